"""Training-time formulations that avoid the memory cost of MindSpore's CPU broadcasting kernels.

MindSpore's CPU ``Add``/``Mul``/``Sub`` kernels, when one input is broadcast (a bias, a per-sample
mask), keep an index into each input for every output element for the life of the compiled graph, for
every such op of the forward and the backward graph. ``Dense`` with a bias is split into MatMul + such an
Add on CPU; without a bias, its weight gradient transposes the output gradient explicitly, and the CPU
``Transpose`` kernel keeps an index table of its own (sizes: docs/benchmarks.md). The helpers here compute the same
numbers with kernels that keep nothing: ``MatMul(transpose_b)`` + ``BiasAdd`` on a 2-D view (the bias
gradient is the ``ReduceSum`` the broadcasting ``Add`` produced, not the slow CPU ``BiasAddGrad``), and a
same-shape multiply by an explicitly broadcast mask, whose hand-written gradient does the same.
"""
from mindspore import nn, ops

from .kernels import FusedKernelUser


class BiasAdd2D(FusedKernelUser):
    """``y + bias`` for a 2-D ``y``; d(bias) = dy summed over the rows (a ReduceSum, not BiasAddGrad; with the
    fused kernels one pass in row order, ``mszoo/cpu/kernels.py``)."""

    fused_kind = "column_sum"

    def construct(self, y, bias):
        return ops.bias_add(y, bias)

    def bprop(self, y, bias, out, dout):
        if self.use_kernel(dout):
            return dout, self.fused(dout)
        return dout, dout.sum(axis=0)


class MulBySampleMask(FusedKernelUser):
    """``x * mask`` with a ``(B, 1, ..., 1)`` mask, broadcast explicitly (forward and backward; with the fused
    kernels one pass scaling each sample, without materialising the broadcast mask). The mask gets no
    gradient (DropPath's is random)."""

    fused_kind = "sample_scale"

    def construct(self, x, mask):
        if self.use_kernel(x):
            return self.fused(x, mask)
        return x * ops.broadcast_to(mask, x.shape)

    def bprop(self, x, mask, out, dout):
        if self.use_kernel(dout):
            return self.fused(dout, mask), ops.zeros_like(mask)
        return dout * ops.broadcast_to(mask, dout.shape), ops.zeros_like(mask)


class Linear2D(nn.Cell):
    """``x @ weight.T + bias`` over the last axis of ``x`` (any rank), as a 2-D MatMul + ``BiasAdd2D``.

    The weight and bias are inputs (the owning layer keeps its Parameters); cells, not module-level
    functions, so that AMP O1's source rewriting sees them as sub-cells."""

    def __init__(self):
        super().__init__()
        self.matmul = ops.MatMul(transpose_b=True)
        self.bias_add = BiasAdd2D()

    def construct(self, x, weight, bias=None):
        out_features, in_features = weight.shape
        y = self.matmul(x.reshape(-1, in_features), weight)
        if bias is not None:
            y = self.bias_add(y, bias)
        return y.reshape(x.shape[:-1] + (out_features,))


class Softmax(FusedKernelUser):
    """Softmax over the last axis; its gradient ``y * (dy - sum(dy * y))`` broadcasts the sum explicitly.

    MindSpore expands the built-in softmax gradient with a broadcasting ``Sub``, whose CPU kernel keeps an
    index table the size of the attention map (the forward, and so every export, is ``ops.softmax``). With the
    fused kernels the gradient is one pass per row (the explicit BroadcastTo is slow on CPU)."""

    fused_kind = "softmax_grad"

    def construct(self, x):
        return ops.softmax(x, axis=-1)

    def bprop(self, x, out, dout):
        if self.use_kernel(out):
            return (self.fused(out, dout),)
        total = (dout * out).sum(axis=-1, keepdims=True)
        return (out * (dout - ops.broadcast_to(total, dout.shape)),)


class QKScores(nn.Cell):
    """``q @ k^T`` over the last two axes. In training one ``BatchMatMul(transpose_b)``: the explicit
    ``k.swapaxes`` and its gradient are two CPU Transpose kernels, each keeping an index per element
    for the whole run; eval and export keep ``matmul(q, k.swapaxes(-2, -1))``."""

    def __init__(self):
        super().__init__()
        self.matmul_nt = ops.BatchMatMul(transpose_b=True)

    def construct(self, q, k):
        if self.training:
            return self.matmul_nt(q, k)
        return ops.matmul(q, k.swapaxes(-2, -1))


class AttnValues(nn.Cell):
    """``attn @ v`` over the last two axes. In training one ``BatchMatMul``, whose gradient uses the kernel's
    transpose flags; ``ops.matmul``'s gradient transposes its inputs with CPU Transpose kernels, which keep an
    index per element for the whole run. Eval and export keep ``ops.matmul``."""

    def __init__(self):
        super().__init__()
        self.matmul_nn = ops.BatchMatMul()

    def construct(self, attn, v):
        if self.training:
            return self.matmul_nn(attn, v)
        return ops.matmul(attn, v)
