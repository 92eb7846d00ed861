"""Sliding-window patch extraction (``torch.nn.Unfold`` / im2col) built from a convolution.

MindSpore's ``nn.Unfold`` has no CPU kernel and ONNX has no Im2Col operator. A convolution whose kernels
are one-hot (kernel ``i * kw + j`` is 1 at position ``(i, j)`` and 0 elsewhere) copies exactly one input
pixel per output channel, so it computes im2col exactly (every product is ``x * 1`` or ``x * 0``) and
runs, trains and exports everywhere a Conv2d does.

The channels are folded into the batch (``(B, C, H, W) -> (B * C, 1, H, W)``) and convolved with the
``kh * kw`` one-hot kernels, which is the same as a grouped convolution with ``groups=C`` but needs no
channel count at construction. The output channel of pixel ``(i, j)`` of input channel ``c`` is
``c * kh * kw + i * kw + j``: the ordering of ``torch.nn.Unfold``.
"""
import numpy as np
import mindspore as ms
from mindspore import nn, ops

from .helpers import to_2tuple


def one_hot_kernels(kernel_size):
    """``(kh * kw, 1, kh, kw)`` float32 array: kernel ``i * kw + j`` is 1 at ``(i, j)``, else 0."""
    kh, kw = to_2tuple(kernel_size)
    return np.eye(kh * kw, dtype=np.float32).reshape(kh * kw, 1, kh, kw)


def unfold_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Spatial size ``(H', W')`` of the sliding-window grid for an input of ``size = (H, W)``."""
    out = []
    for n, k, s, p, d in zip(to_2tuple(size), to_2tuple(kernel_size), to_2tuple(stride), to_2tuple(padding),
                             to_2tuple(dilation)):
        out.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return tuple(out)


class Unfold(nn.Cell):
    """Extract sliding local blocks like ``torch.nn.Unfold(kernel_size, dilation, padding, stride)``.

    ``flatten=True`` (default) returns torch's layout ``(B, C * kh * kw, L)``; ``flatten=False`` keeps the
    grid, ``(B, C * kh * kw, H', W')``, so a caller can read the output size from the result. The kernels
    are a constant tensor, not a parameter: nothing to train, nothing in checkpoints.
    """

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1, flatten=True):
        super().__init__()
        self.kernel_size = to_2tuple(kernel_size)
        self.dilation = to_2tuple(dilation)
        self.padding = to_2tuple(padding)
        self.stride = to_2tuple(stride)
        self.flatten = flatten
        self.window = self.kernel_size[0] * self.kernel_size[1]
        self.kernels = ms.Tensor(one_hot_kernels(self.kernel_size))

    def construct(self, x):
        b, c, h, w = x.shape
        y = ops.conv2d(x.reshape(b * c, 1, h, w), self.kernels.astype(x.dtype), None, self.stride, "pad",
                       self.padding, self.dilation, 1)
        oh, ow = y.shape[2], y.shape[3]
        if self.flatten:
            return y.reshape(b, c * self.window, oh * ow)
        return y.reshape(b, c * self.window, oh, ow)

    def extend_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}, flatten={self.flatten}")
