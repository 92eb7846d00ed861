"""Twins' conditional position encoding (PEG, https://arxiv.org/abs/2102.10882): a depthwise 3x3 convolution
over the token map, plus a residual when ``stride == 1``."""
from mindspore import nn

from .backend import FusedKernelUser
from .layout import MapToTokens, TokensToMap


class PosConv(FusedKernelUser):
    """PEG on tokens ``(B, H * W, C)`` of a map of ``size = (H, W)``. The convolution sits in a one-element
    ``SequentialCell`` so its weights are named ``proj.0.*`` like the reference's ``nn.Sequential``.

    On CPU, once given the fused kernels (the trainer's models), it runs as one fused kernel on the tokens' own
    channels-last layout, in training and evaluation (``mszoo/cpu/kernels.py``, kind ``"peg"``): no transposes to
    NCHW and back, and no NCHW depthwise convolution, which oneDNN runs on a reference kernel wherever AVX-512 is
    allowed (``mszoo/cpu/onednn.py``)."""

    fused_kind = "peg"
    in_inference = True

    def __init__(self, in_chans, embed_dim=768, stride=1):
        super().__init__()
        self.proj = nn.SequentialCell([
            nn.Conv2d(in_chans, embed_dim, kernel_size=3, stride=stride, pad_mode="pad", padding=1,
                      group=embed_dim, has_bias=True),
        ])
        self.stride = stride
        self.residual = stride == 1 and in_chans == embed_dim
        self.to_map = TokensToMap()
        self.to_tokens = MapToTokens()

    def construct(self, x, size):
        if self.residual and self.use_kernel(x):
            conv = self.proj[0]
            y = self.fused(x.reshape(x.shape[0], size[0], size[1], x.shape[2]), conv.weight, conv.bias)
            return y.reshape(x.shape)
        feat = self.to_map(x, size)
        x = self.proj(feat)
        if self.stride == 1:
            x = x + feat
        return self.to_tokens(x)
