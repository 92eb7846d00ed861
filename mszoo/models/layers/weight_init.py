"""Weight initialisation matching the references (timm ``_init_weights`` of each family)."""
import math

import mindspore as ms
import numpy as np
from mindspore import nn
from mindspore.common.initializer import Normal, One, Zero, initializer

from .linear import Linear
from .norm import LayerNorm
from .patch_conv import PatchConv
from .unfold import UnfoldConv


def _set(param, init):
    param.set_data(initializer(init, param.shape, param.dtype))


def trunc_normal_array(shape, std=0.02, mean=0.0, a=-2.0, b=2.0):
    """A float32 array drawn from the normal(mean, std) truncated to ``[a, b]`` (absolute bounds, as timm's
    ``trunc_normal_``): normal draws, those outside redrawn until none is. Seeded from NumPy's global state (as
    MindSpore's initializers are, so ``mindspore.set_seed`` makes it repeat); 7x faster than MindSpore's
    ``TruncatedNormal``, which took most of building a large model (docs/benchmarks.md)."""
    if not a < b:
        raise ValueError(f"trunc_normal_array: empty interval [{a}, {b}]")
    rng = np.random.default_rng(np.random.randint(0, 2 ** 31 - 1, size=4))
    out = rng.standard_normal(shape, dtype=np.float32)
    out *= np.float32(std)
    out += np.float32(mean)
    outside = (out < a) | (out > b)
    while outside.any():
        redrawn = rng.standard_normal(int(outside.sum()), dtype=np.float32) * np.float32(std) + np.float32(mean)
        out[outside] = redrawn
        outside = (out < a) | (out > b)
    return out


def _set_trunc_normal(param, std):
    param.set_data(ms.Tensor(trunc_normal_array(tuple(param.shape), std), param.dtype))


def init_weights_vit(model, std=0.02, conv_fan_out=False):
    """Dense and Linear: truncated normal(std) weights, zero bias; LayerNorm: ones/zeros.

    ``conv_fan_out`` initialises Conv2d (and PatchConv, UnfoldConv) as Twins does: normal(0, sqrt(2 / fan_out)),
    zero bias.
    """
    for _, cell in model.cells_and_names():
        if isinstance(cell, (nn.Dense, Linear)):
            _set_trunc_normal(cell.weight, std)
            if cell.bias is not None:
                _set(cell.bias, Zero())
        elif isinstance(cell, LayerNorm):
            _set(cell.weight, One())
            _set(cell.bias, Zero())
        elif conv_fan_out and isinstance(cell, (nn.Conv2d, PatchConv, UnfoldConv)):
            kh, kw = cell.kernel_size
            fan_out = kh * kw * cell.out_channels // cell.group
            _set(cell.weight, Normal(sigma=math.sqrt(2.0 / fan_out)))
            if cell.bias is not None:
                _set(cell.bias, Zero())


def trunc_normal_param(shape, std=0.02, name=None):
    """A new Parameter drawn from a truncated normal."""
    return ms.Parameter(ms.Tensor(trunc_normal_array(tuple(shape), std)), name=name)

