"""Fully connected layer computed by MindSpore's fused ``Dense`` op (timm/PyTorch ``nn.Linear``)."""
import math

from mindspore import Parameter, nn, ops
from mindspore.common.initializer import HeUniform, Uniform, initializer

from .backend import Linear2D


class Linear(nn.Cell):
    """``y = x @ weight.T + bias`` over the last axis of an input of any rank.

    The parameters (``weight`` of shape (out, in), ``bias``), their default init and the numbers are
    those of ``nn.Dense``, so checkpoints map 1:1. The difference is the kernel: ``nn.Dense`` flattens
    to 2-D and runs MatMul + BiasAdd, whose CPU BiasAddGrad is slow on wide layers (docs/benchmarks.md).

    In training it runs ``Linear2D`` instead (same numbers, same speed): on CPU the fused op's bias
    becomes a broadcasting Add whose kernel keeps an index table for the whole run (``mszoo/cpu/lean_ops.py``).
    Eval and export keep the fused op, so exported graphs are unchanged.
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
        self.train_path = Linear2D()

    def construct(self, x):
        # under AMP the input arrives in float16 while the parameters stay float32; Dense wants one dtype
        bias = None if self.bias is None else self.bias.astype(x.dtype)
        if self.training:
            return self.train_path(x, self.weight.astype(x.dtype), bias)
        return ops.dense(x, self.weight.astype(x.dtype), bias)

    def extend_repr(self):
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, has_bias={self.has_bias}"

