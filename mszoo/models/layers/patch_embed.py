"""Image to patch embedding (non-overlapping conv), returning tokens and the grid size."""
from mindspore import nn

from .helpers import to_2tuple
from .layout import MapToTokens
from .norm import LayerNorm


class PatchEmbed(nn.Cell):
    """Conv patchify -> (B, N, C) tokens, optional LayerNorm; returns ``(tokens, (H', W'))``.

    Spatial size is read from the input, so the same cell runs at any multiple of ``patch_size``.
    """

    def __init__(self, patch_size=16, in_chans=3, embed_dim=768, norm=True):
        super().__init__()
        self.patch_size = to_2tuple(patch_size)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size,
                              pad_mode="valid", has_bias=True)
        self.norm = LayerNorm(embed_dim) if norm else nn.Identity()
        self.to_tokens = MapToTokens()

    def construct(self, x):
        x = self.proj(x)
        h, w = x.shape[2:]
        x = self.to_tokens(x)
        return self.norm(x), (h, w)
