"""Multi-head self-attention as in ViT / timm ``Attention`` (fused qkv projection)."""
from mindspore import nn, ops

from .drop import make_dropout
from .linear import Linear
from .memory import QKScores, Softmax


def unbind(x):
    """``x`` split along axis 0 into ``x.shape[0]`` tensors without that axis (``torch.unbind``).

    Used to take q, k, v apart after the head transpose. ``ops.split`` is 2-4x faster than indexing
    (``qkv[0]``, a StridedSlice) on MindSpore's CPU backend, forward and backward.
    """
    parts = ops.split(x, 1, 0)
    return tuple(part.squeeze(0) for part in parts)


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

    def construct(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = unbind(qkv)
        attn = self.attn_drop(self.softmax(self.scores(q * self.scale, k)))
        x = ops.matmul(attn, v).transpose(0, 2, 1, 3).reshape(b, n, c)
        return self.proj_drop(self.proj(x))
