"""Fully connected layer (timm/PyTorch ``nn.Linear``): a 2-D MatMul + BiasAdd, MindSpore's ``Dense`` in ONNX."""
import math

from mindspore import Parameter, nn, ops
from mindspore.common.initializer import HeUniform, Uniform, initializer

from .backend import Linear2D


class Linear(nn.Cell):
    """``y = x @ weight.T + bias`` over the last axis of an input of any rank.

    The parameters (``weight`` of shape (out, in), ``bias``), their default init and the numbers are
    those of ``nn.Dense``, so checkpoints map 1:1. The kernel is ``Linear2D`` (one 2-D MatMul with the weight
    transposed in the kernel, and a BiasAdd) in training and in evaluation: ``ops.dense`` runs the same product
    1.35x slower in graph mode and 3.6x slower in PyNative on CPU (docs/benchmarks.md), and its CPU BiasAddGrad
    is slow on wide layers. ONNX / OpenVINO export (``layers.set_exportable``) writes the fused ``Dense``: the
    ONNX graph passes (mszoo/deploy/onnx_graph.py) and NNCF's int8 pattern are built around its MatMul.
    """

    def __init__(self, in_channels, out_channels, has_bias=True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.has_bias = has_bias
        self.weight = Parameter(initializer(HeUniform(math.sqrt(5)), [out_channels, in_channels]), name="weight")
        self.bias = None
        if has_bias:
            bound = 1 / math.sqrt(in_channels)
            self.bias = Parameter(initializer(Uniform(scale=bound), [out_channels]), name="bias")
        self.matmul = Linear2D()
        self.exportable = False  # ONNX / OpenVINO export: the fused Dense (layers.set_exportable)

    def construct(self, x):
        # under AMP the input arrives in float16 while the parameters stay float32; Dense wants one dtype
        bias = None if self.bias is None else self.bias.astype(x.dtype)
        if self.exportable:
            return ops.dense(x, self.weight.astype(x.dtype), bias)
        return self.matmul(x, self.weight.astype(x.dtype), bias)

    def extend_repr(self):
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, has_bias={self.has_bias}"

