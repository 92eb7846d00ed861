"""A stride == kernel convolution (patchify) computed as a reshape plus one matrix product.

``nn.Conv2d(in, out, kernel_size=p, stride=p, pad_mode="valid")`` sees every input pixel exactly once: each
output pixel is one ``p x p x in`` patch times the weight. Cutting the patches is pure data movement (reshapes
and ``Permute``, each a swap of two adjacent groups of axes), the product one 2-D MatMul (``Linear2D``). The
numbers equal the convolution's up to float32 summation order (tested to 1e-6). Why not the convolution: oneDNN
runs MindSpore's plain-layout (NCHW) convolutions on a reference reorder when it may use AVX-512
(``jit_uni_ncsp:conv+ref:any`` under ``ONEDNN_VERBOSE=1``), the matrix product on its AVX-512/AMX kernels
(docs/benchmarks.md). The parameters are the convolution's (``weight`` (out, in, p, p), ``bias`` (out,), the
same default init), so checkpoints and the timm mapping are unchanged. ONNX and OpenVINO exports
(``set_exportable``) keep the convolution: their runtimes have fast ones, and exported graphs stay as they were.
"""
import math

from mindspore import Parameter, nn, ops
from mindspore.common.initializer import HeUniform, Uniform, initializer

from .backend import Linear2D, Permute
from .helpers import to_2tuple


def conv_parameters(in_channels, out_channels, kernel_size, has_bias):
    """``(weight, bias)`` as ``nn.Conv2d`` makes them: weight ``(out, in, kh, kw)`` He-uniform with a = sqrt(5), bias
    uniform in +-1/sqrt(fan_in) (None without one), named ``weight`` and ``bias``: a cell holding them loads
    Conv2d checkpoints and initialises as Conv2d does."""
    kh, kw = kernel_size
    weight = Parameter(initializer(HeUniform(math.sqrt(5)), [out_channels, in_channels, kh, kw]), name="weight")
    if not has_bias:
        return weight, None
    bound = 1 / math.sqrt(in_channels * kh * kw)
    return weight, Parameter(initializer(Uniform(scale=bound), [out_channels]), name="bias")


class PatchConv(nn.Cell):
    """``Conv2d(in_channels, out_channels, kernel_size=patch_size, stride=patch_size)`` returning tokens.

    ``construct(x)``: an image or map ``(B, C, H, W)`` -> ``(tokens (B, H' * W', out), (H', W'))``.
    ``from_tokens(x, size)``: the tokens ``(B, H * W, C)`` of an ``H x W`` map -> the same, without the
    tokens -> map transpose. Rows and columns past the last whole patch are dropped, as ``pad_mode="valid"``
    does.
    """

    def __init__(self, in_channels, out_channels, patch_size, has_bias=True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = to_2tuple(patch_size)
        self.group = 1  # as Conv2d, for the weight init (mszoo/models/layers/weight_init.py)
        self.exportable = False  # ONNX / OpenVINO export: the convolution (layers.set_exportable)
        self.weight, self.bias = conv_parameters(in_channels, out_channels, self.kernel_size, has_bias)
        self.matmul = Linear2D()
        # (B, C, H', kh, W', kw) -> (B, H', C, kh, W', kw) -> (B, H', W', C, kh, kw)
        self.rows_first = Permute((0, 2, 1, 3, 4, 5))
        self.cols_first = Permute((0, 1, 4, 2, 3, 5))
        # tokens (B, H', kh, W', kw * C) -> (B, H', W', kh, kw * C); the weight (out, C, kh, kw) -> (out, kh, kw, C)
        self.token_patches = Permute((0, 1, 3, 2, 4))
        self.weight_channels_last = Permute((0, 2, 3, 1))
        self.swap_last = Permute((0, 2, 1))  # export form: (B, C, N) <-> (B, N, C)
        self.conv = ops.Conv2D(out_channels, self.kernel_size, pad_mode="valid", stride=self.kernel_size)

    def construct(self, x):
        if self.exportable:
            return self._conv(x)
        b, c, h, w = x.shape
        kh, kw = self.kernel_size
        gh, gw = h // kh, w // kw
        if gh * kh != h or gw * kw != w:
            x = x[:, :, :gh * kh, :gw * kw]
        patches = self.cols_first(self.rows_first(x.reshape(b, c, gh, kh, gw, kw)))
        weight = self.weight.astype(x.dtype).reshape(self.out_channels, -1)
        return self._project(patches.reshape(b, gh * gw, -1), weight), (gh, gw)

    def from_tokens(self, x, size):
        b, _, c = x.shape
        if self.exportable:
            return self._conv(self.swap_last(x).reshape(b, c, size[0], size[1]))
        kh, kw = self.kernel_size
        gh, gw = size[0] // kh, size[1] // kw
        if gh * kh != size[0] or gw * kw != size[1]:
            x = x.reshape(b, size[0], size[1], c)[:, :gh * kh, :gw * kw].reshape(b, -1, c)
        patches = self.token_patches(x.reshape(b, gh, kh, gw, kw * c))
        weight = self.weight_channels_last(self.weight.astype(x.dtype)).reshape(self.out_channels, -1)
        return self._project(patches.reshape(b, gh * gw, -1), weight), (gh, gw)

    def _conv(self, x):
        y = self.conv(x, self.weight.astype(x.dtype))
        if self.bias is not None:
            y = ops.bias_add(y, self.bias.astype(x.dtype))
        b, c, h, w = y.shape
        return self.swap_last(y.reshape(b, c, h * w)), (h, w)

    def _project(self, patches, weight):
        bias = None if self.bias is None else self.bias.astype(patches.dtype)
        return self.matmul(patches, weight, bias)

    def extend_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.kernel_size}"
