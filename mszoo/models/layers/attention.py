"""Multi-head self-attention as in ViT / timm ``Attention`` (fused qkv projection), and the attention core that
every attention of the zoo shares."""
from mindspore import nn

from .backend import AttnValues, QKScores, Softmax, SplitHeads
from .drop import make_dropout
from .layout import HeadsToTokens
from .linear import Linear


class ScaledDotProduct(nn.Cell):
    """``softmax(q k^T * scale) v`` over ``(..., heads, N, head_dim)`` tensors, dropout on the attention weights.

    ``scale_queries`` scales q before the product (timm's ViT, T2T and Twins) or the scores after it (timm's
    TNT): the two orders differ in the last bits, so each model keeps its reference's. Training runs the
    memory-lean products and softmax gradient of ``mszoo/cpu/lean_ops.py``; eval and export the plain ops."""

    def __init__(self, scale, attn_drop=0.0, scale_queries=True):
        super().__init__()
        self.scale = scale
        self.scale_queries = scale_queries
        self.scores = QKScores()
        self.softmax = Softmax()
        self.attn_drop = make_dropout(attn_drop)
        self.attn_values = AttnValues()

    def construct(self, q, k, v):
        scores = self.scores(q * self.scale, k) if self.scale_queries else self.scores(q, k) * self.scale
        return self.attn_values(self.attn_drop(self.softmax(scores)), v)

    def extend_repr(self):
        return f"scale={self.scale:.6g}, scale_queries={self.scale_queries}"


class Attention(nn.Cell):
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = Linear(dim, dim * 3, has_bias=qkv_bias)
        self.attend = ScaledDotProduct(qk_scale or self.head_dim ** -0.5, attn_drop)
        self.proj = Linear(dim, dim)
        self.proj_drop = make_dropout(proj_drop)
        self.split_heads = SplitHeads(3, num_heads)
        self.merge_heads = HeadsToTokens()

    def construct(self, x):
        q, k, v = self.split_heads(self.qkv(x))
        x = self.merge_heads(self.attend(q, k, v))
        return self.proj_drop(self.proj(x))
