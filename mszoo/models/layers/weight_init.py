"""Weight initialisation matching the references (timm ``_init_weights`` of each family)."""
import math

import mindspore as ms
from mindspore import nn
from mindspore.common.initializer import Normal, One, TruncatedNormal, Zero, initializer

from .linear import Linear
from .norm import LayerNorm
from .patch_conv import PatchConv
from .unfold import UnfoldConv


def _set(param, init):
    param.set_data(initializer(init, param.shape, param.dtype))


def init_weights_vit(model, std=0.02, conv_fan_out=False):
    """Dense and Linear: truncated normal(std) weights, zero bias; LayerNorm: ones/zeros.

    ``conv_fan_out`` initialises Conv2d (and PatchConv, UnfoldConv) as Twins does: normal(0, sqrt(2 / fan_out)),
    zero bias.
    """
    for _, cell in model.cells_and_names():
        if isinstance(cell, (nn.Dense, Linear)):
            _set(cell.weight, TruncatedNormal(sigma=std))
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
    return ms.Parameter(initializer(TruncatedNormal(sigma=std), shape, ms.float32), name=name)

