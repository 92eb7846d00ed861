"""Image to patch embedding (non-overlapping conv), returning tokens and the grid size."""
from mindspore import nn

from .helpers import to_2tuple
from .norm import LayerNorm
from .patch_conv import PatchConv


class PatchEmbed(nn.Cell):
    """Conv patchify (``PatchConv``: reshape + matrix product) -> (B, N, C) tokens, optional LayerNorm; returns
    ``(tokens, (H', W'))``.

    Spatial size is read from the input, so the same cell runs at any multiple of ``patch_size``.
    """

    def __init__(self, patch_size=16, in_chans=3, embed_dim=768, norm=True):
        super().__init__()
        self.patch_size = to_2tuple(patch_size)
        self.proj = PatchConv(in_chans, embed_dim, self.patch_size)
        self.norm = LayerNorm(embed_dim) if norm else nn.Identity()

    def construct(self, x):
        x, size = self.proj(x)
        return self.norm(x), size
