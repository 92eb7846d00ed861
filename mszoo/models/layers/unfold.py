"""Sliding-window patch extraction (``torch.nn.Unfold`` / im2col) from reshapes and slices.

MindSpore's ``nn.Unfold`` has no CPU kernel and ONNX has no Im2Col operator. Here im2col is pure data
movement (pad, reshape, transpose, slice, concat): the result is exact, it trains (every op has a
gradient) and it exports to ONNX.

How: write the window offset as ``i = q * s + r`` (``0 <= r < s``). After a space-to-depth reshape of
the padded input, ``t[r_h, r_w, Y, X] = x_pad[s * Y + r_h, s * X + r_w]``, the value at offset ``i`` of
the window at output row ``y`` is ``t[r, ., y + q, .]``: one slice per ``q`` (``ceil(k / s)`` of them)
covers all ``r`` at once. Concatenating those slices over ``q`` gives the offsets in order ``0..k-1``,
so the channel of pixel ``(i, j)`` of input channel ``c`` is ``c * kh * kw + i * kw + j``, the ordering
of ``torch.nn.Unfold``. A dilated unfold takes one slice per kernel row and per kernel column instead.

Compared with a convolution with one-hot kernels this is ~10x faster on MindSpore's CPU backend, and
the graph stays small (fast GRAPH-mode compile). ``UnfoldRows`` gives the windows as rows (tokens); with the
fused CPU kernels that is one pass each way (``mszoo/cpu/kernels.py``). ``UnfoldConv`` multiplies them.
"""

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from .backend import FusedKernelUser, Linear2D, Permute
from .helpers import to_2tuple
from .patch_conv import conv_parameters


def unfold_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Spatial size ``(H', W')`` of the sliding-window grid for an input of ``size = (H, W)``."""
    out = []
    for n, k, s, p, d in zip(to_2tuple(size), to_2tuple(kernel_size), to_2tuple(stride), to_2tuple(padding),
                             to_2tuple(dilation)):
        out.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return tuple(out)


def _int_pair(x):
    return tuple(int(v) for v in to_2tuple(x))


def _ceil_div(a, b):
    return -(-a // b)


class Unfold(nn.Cell):
    """Extract sliding local blocks like ``torch.nn.Unfold(kernel_size, dilation, padding, stride)``.

    ``flatten=True`` (default) returns torch's layout ``(B, C * kh * kw, L)``; ``flatten=False`` keeps the
    grid, ``(B, C * kh * kw, H', W')``, so a caller can read the output size from the result. No
    parameters.
    """

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1, flatten=True):
        super().__init__()
        self.kernel_size = _int_pair(kernel_size)
        self.dilation = _int_pair(dilation)
        self.padding = _int_pair(padding)
        self.stride = _int_pair(stride)
        self.flatten = flatten
        self.window = self.kernel_size[0] * self.kernel_size[1]
        self.dilated = self.dilation != (1, 1)

    def _pad_crop(self, x, oh, ow):
        """Zero-pad (``padding`` on every side, plus what the space-to-depth reshape needs at the
        bottom/right) or crop the bottom/right rows no window reaches."""
        _, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if self.dilated:
            (dh, dw) = self.dilation
            need_h, need_w = (kh - 1) * dh + sh * oh, (kw - 1) * dw + sw * ow
        else:
            need_h = (oh + _ceil_div(kh, sh) - 1) * sh
            need_w = (ow + _ceil_div(kw, sw) - 1) * sw
        extra_h, extra_w = need_h - h - ph, need_w - w - pw
        if ph > 0 or pw > 0 or extra_h > 0 or extra_w > 0:
            # ops.Pad (not ops.pad / PadV3): it exports to ONNX.
            x = ops.Pad(((0, 0), (0, 0), (ph, max(extra_h, 0)), (pw, max(extra_w, 0))))(x)
        if extra_h < 0 or extra_w < 0:
            x = x[:, :, :need_h, :need_w]
        return x

    def _unfold_dilated(self, x, oh, ow):
        _, c, _, w = x.shape
        (kh, kw), (dh, dw), (sh, sw) = self.kernel_size, self.dilation, self.stride
        # Every s-th row from offset i * d, without a stepped slice (MindSpore's CPU StridedSliceGrad
        # fails on stepped slices of inner axes): take s * H' rows, fold them as (H', s), keep index 0.
        rows = ()
        for i in range(kh):
            r = x[:, :, i * dh:i * dh + sh * oh, :].reshape(-1, c, oh, sh, w)[:, :, :, 0, :]
            rows = rows + (r.expand_dims(2),)
        t = ops.concat(rows, 2)  # (B, C, kh, H', Wp)
        cols = ()
        for j in range(kw):
            col = t[:, :, :, :, j * dw:j * dw + sw * ow].reshape(-1, c, kh, oh, ow, sw)[:, :, :, :, :, 0]
            cols = cols + (col.expand_dims(3),)
        return ops.concat(cols, 3)  # (B, C, kh, kw, H', W')

    def _unfold_s2d(self, x, oh, ow):
        _, c, h, w = x.shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        # (B, C, Hs, sh, Ws, sw) -> (B, C, sh, sw, Hs, Ws)
        t = x.reshape(-1, c, h // sh, sh, w // sw, sw).transpose(0, 1, 3, 5, 2, 4)
        rows = ()
        for q in range(_ceil_div(kh, sh)):
            rows = rows + (t[:, :, :min(sh, kh - q * sh), :, q:q + oh, :],)
        t = ops.concat(rows, 2)  # (B, C, kh, sw, H', Ws)
        cols = ()
        for q in range(_ceil_div(kw, sw)):
            cols = cols + (t[:, :, :, :min(sw, kw - q * sw), :, q:q + ow],)
        return ops.concat(cols, 3)  # (B, C, kh, kw, H', W')

    def construct(self, x):
        _, c, h, w = x.shape
        oh, ow = unfold_output_size((h, w), self.kernel_size, self.stride, self.padding, self.dilation)
        x = self._pad_crop(x, oh, ow)
        y = self._unfold_dilated(x, oh, ow) if self.dilated else self._unfold_s2d(x, oh, ow)
        if self.flatten:
            return y.reshape(-1, c * self.window, oh * ow)
        return y.reshape(-1, c * self.window, oh, ow)

    def extend_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}, flatten={self.flatten}")


class UnfoldRows(FusedKernelUser):
    """The sliding windows of a ``(B, C, H, W)`` map as rows ``(B, H' * W', C * kh * kw)``: torch's
    ``Unfold(kernel_size, padding=padding, stride=stride)(x).transpose(1, 2)``, the tokens of T2T-ViT's soft split
    and the matrix a convolution multiplies. ``grid((H, W))`` is ``(H', W')``.

    With the fused CPU kernels (``mszoo/cpu/kernels.py``), in training and evaluation, one pass cuts the windows
    straight into rows, and one pass gathers their gradient back (the built-in unfold's slices and their gradient
    are slow on CPU); the values are the same. Export keeps the built-in ``Unfold``.
    """

    fused_kind = "unfold"
    in_inference = True  # the kernel's rows are the built-in unfold's, value for value

    def __init__(self, kernel_size, stride=1, padding=0):
        super().__init__()
        self.geometry = _int_pair(kernel_size) + _int_pair(stride) + _int_pair(padding)
        self.fused_geometry = ms.Tensor(np.array(self.geometry, np.float32))
        self.unfold = Unfold(kernel_size, padding=padding, stride=stride)  # torch's (B, C * kh * kw, L)
        self.to_rows = Permute((0, 2, 1))  # (B, C * kh * kw, L) -> (B, L, C * kh * kw)

    def use_fused_ops(self, ops_by_kind):
        """The unfold op for this cell's geometry; see ``FusedKernelUser``."""
        self.fused = None if ops_by_kind is None else ops_by_kind["unfold"](*self.geometry)

    def grid(self, size):
        """``(H', W')``: the windows' grid over a map of ``size = (H, W)``."""
        return unfold_output_size(size, self.geometry[:2], self.geometry[2:4], self.geometry[4:])

    def construct(self, x):
        if self.use_kernel(x):
            return self.fused(x, self.fused_geometry)
        return self.to_rows(self.unfold(x))

    def extend_repr(self):
        return self.unfold.extend_repr()


class UnfoldConv(nn.Cell):
    """``nn.Conv2d(in, out, kernel_size, stride, pad_mode="pad", padding)`` as ``UnfoldRows`` + one matrix product.

    For convolutions over images whose windows overlap (TNT's 7x7 stride-4 pixel embedding; stride == kernel
    has ``PatchConv``): oneDNN runs MindSpore's NCHW convolutions on a reference reorder when AVX-512 is allowed
    (``mszoo/models/layers/patch_conv.py``). Same parameters (``weight`` (out, in, kh, kw), ``bias``) and default
    init as ``nn.Conv2d``; the numbers equal it up to float32 summation order. Maps ``(B, C, H, W)`` to
    ``(B, out, H', W')``. ONNX and OpenVINO exports (``set_exportable``) keep the convolution.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, has_bias=True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _int_pair(kernel_size)
        self.group = 1  # as Conv2d, for the weight init
        self.exportable = False  # ONNX / OpenVINO export: the convolution (layers.set_exportable)
        ph, pw = _int_pair(padding)
        self.conv = ops.Conv2D(out_channels, self.kernel_size, pad_mode="pad", pad=(ph, ph, pw, pw),
                               stride=_int_pair(stride))
        self.weight, self.bias = conv_parameters(in_channels, out_channels, self.kernel_size, has_bias)
        self.rows = UnfoldRows(kernel_size, stride=stride, padding=padding)
        self.to_map = Permute((0, 2, 1))  # (B, L, out) -> (B, out, L)
        self.matmul = Linear2D()

    def construct(self, x):
        if self.exportable:
            y = self.conv(x, self.weight.astype(x.dtype))
            return y if self.bias is None else ops.bias_add(y, self.bias.astype(x.dtype))
        rows = self.rows(x)
        oh, ow = self.rows.grid(x.shape[2:])
        bias = None if self.bias is None else self.bias.astype(x.dtype)
        y = self.matmul(rows, self.weight.astype(x.dtype).reshape(self.out_channels, rows.shape[-1]), bias)
        return self.to_map(y).reshape(x.shape[0], self.out_channels, oh, ow)

    def extend_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, {self.rows.extend_repr()}"
