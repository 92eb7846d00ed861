"""Multi-head self-attention as in ViT / timm ``Attention`` (fused qkv projection)."""
from mindspore import nn

from .drop import make_dropout
from .linear import Linear
from .memory import AttnValues, QKScores, Softmax
from .transpose import Permute, SplitHeads


class Attention(nn.Cell):
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = qk_scale or self.head_dim ** -0.5
        self.qkv = Linear(dim, dim * 3, has_bias=qkv_bias)
        self.attn_drop = make_dropout(attn_drop)
        self.proj = Linear(dim, dim)
        self.proj_drop = make_dropout(proj_drop)
        self.scores = QKScores()
        self.softmax = Softmax()
        self.attn_values = AttnValues()
        self.split_heads = SplitHeads(3, num_heads)
        self.merge_heads = Permute((0, 2, 1, 3))

    def construct(self, x):
        b, n, c = x.shape
        q, k, v = self.split_heads(self.qkv(x))
        attn = self.attn_drop(self.softmax(self.scores(q * self.scale, k)))
        x = self.merge_heads(self.attn_values(attn, v)).reshape(b, n, c)
        return self.proj_drop(self.proj(x))
