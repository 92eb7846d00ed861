"""Stochastic depth (drop path) and dropout helpers."""
import numpy as np
from mindspore import nn, ops

from .backend import MulBySampleMask


class DropPath(nn.Cell):
    """Drop whole residual branches per sample during training (stochastic depth).

    Identity in eval mode or with ``drop_prob == 0``; in training the kept samples are scaled by
    ``1 / keep_prob`` so the expectation is unchanged (as timm's ``DropPath`` with ``scale_by_keep``).
    """

    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = float(drop_prob)
        self.keep_prob = 1.0 - self.drop_prob
        self.mul_mask = MulBySampleMask()

    def construct(self, x):
        if not self.training or self.drop_prob == 0.0:
            return x
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = ops.floor(self.keep_prob + ops.rand(shape, dtype=x.dtype)) / self.keep_prob
        return self.mul_mask(x, mask)

    def extend_repr(self):
        return f"drop_prob={self.drop_prob}"


def make_dropout(p):
    """``nn.Dropout`` for ``p > 0``, else an identity cell (cheaper graph)."""
    return nn.Dropout(p=p) if p > 0 else nn.Identity()


def drop_path_rates(drop_path_rate, depth):
    """Stochastic-depth rate of each of ``depth`` blocks: linear from 0 to ``drop_path_rate`` (timm's
    ``calculate_drop_path_rates`` with a flat depth), as Python floats; a family whose blocks sit in
    stages passes the total depth and indexes the list with a running block number."""
    return [float(r) for r in np.linspace(0.0, drop_path_rate, depth)] if depth > 0 else []
