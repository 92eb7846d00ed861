"""The layout moves the models make, by name: tokens <-> maps, tokens <-> heads, maps <-> windows.

Each is a small cell around the one transpose it needs (``Permute``, the CPU backend's, see backend.py), so a
model file says ``self.to_map(x, size)`` instead of a permutation and a shape comment. Parameter-free:
checkpoints are unchanged. The batch axis is reshaped as ``-1`` (MindIR exports leave it open).
"""
from mindspore import nn

from .backend import Permute


class TokensToMap(nn.Cell):
    """Tokens ``(B, H * W, C)`` -> map ``(B, C, H, W)`` for ``size = (H, W)``; the inverse of ``MapToTokens``."""

    def __init__(self):
        super().__init__()
        self.swap = Permute((0, 2, 1))

    def construct(self, x, size):
        return self.swap(x).reshape(-1, x.shape[2], size[0], size[1])


class MapToTokens(nn.Cell):
    """Map ``(B, C, H, W)`` -> tokens ``(B, H * W, C)`` (row-major); the inverse of ``TokensToMap``."""

    def __init__(self):
        super().__init__()
        self.swap = Permute((0, 2, 1))

    def construct(self, x):
        _, c, h, w = x.shape
        return self.swap(x.reshape(-1, c, h * w))


class TokensToHeads(nn.Cell):
    """Tokens ``(B, N, heads * head_dim)`` of one projection -> ``(B, heads, N, head_dim)``; a joint q/k/v
    projection splits with ``SplitHeads``. The inverse of ``HeadsToTokens``."""

    def __init__(self, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.swap = Permute((0, 2, 1, 3))

    def construct(self, x):
        _, n, c = x.shape
        return self.swap(x.reshape(-1, n, self.num_heads, c // self.num_heads))

    def extend_repr(self):
        return f"num_heads={self.num_heads}"


class HeadsToTokens(nn.Cell):
    """``(B, heads, N, head_dim)`` -> tokens ``(B, N, heads * head_dim)``: the heads' outputs side by side."""

    def __init__(self):
        super().__init__()
        self.swap = Permute((0, 2, 1, 3))

    def construct(self, x):
        _, h, n, d = x.shape
        return self.swap(x).reshape(-1, n, h * d)


class MapToWindows(nn.Cell):
    """Map ``(B, H, W, C)`` (``H`` and ``W`` multiples of ``ws``) -> windows ``(B, H / ws, W / ws, ws, ws, C)``:
    one ``ws`` x ``ws`` window per cell of the window grid. The inverse of ``WindowsToMap``."""

    def __init__(self, ws):
        super().__init__()
        self.ws = ws
        self.swap = Permute((0, 1, 3, 2, 4, 5))

    def construct(self, x):
        _, h, w, c = x.shape
        ws = self.ws
        return self.swap(x.reshape(-1, h // ws, ws, w // ws, ws, c))

    def extend_repr(self):
        return f"ws={self.ws}"


class WindowsToMap(nn.Cell):
    """Windows ``(B, gh, gw, ws, ws, C)`` -> map ``(B, gh * ws, gw * ws, C)``."""

    def __init__(self):
        super().__init__()
        self.swap = Permute((0, 1, 3, 2, 4, 5))

    def construct(self, x):
        _, gh, gw, ws, _, c = x.shape
        return self.swap(x).reshape(-1, gh * ws, gw * ws, c)
