"""Absolute position embeddings resampled to another grid (timm's ``resample_abs_pos_embed``), in numpy.

Used when converting checkpoints to a model built for another input size; float64 math gives timm's numbers
(``F.interpolate(mode='bicubic', antialias=True, align_corners=False)``) to float32 precision.
"""
import math

import numpy as np

from .helpers import to_2tuple


def _bicubic_aa_kernel(x, a=-0.5):
    """Cubic convolution kernel with ``a = -0.5`` (PyTorch's antialiased bicubic, as PIL)."""
    x = np.abs(x)
    out = np.zeros_like(x)
    near = x < 1.0
    far = (x >= 1.0) & (x < 2.0)
    out[near] = ((a + 2.0) * x[near] - (a + 3.0)) * x[near] ** 2 + 1.0
    out[far] = a * (((x[far] - 5.0) * x[far] + 8.0) * x[far] - 4.0)
    return out


def _resize_matrix(in_size, out_size):
    """``(out_size, in_size)`` matrix of ``F.interpolate(mode='bicubic', antialias=True,
    align_corners=False)`` along one axis: a cubic filter stretched by the downscale factor, cut to
    the input (no border replication) and normalised per output sample.
    """
    scale = in_size / out_size
    stretch = max(scale, 1.0)
    support = 2.0 * stretch
    mat = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        taps = np.arange(lo, hi, dtype=np.float64)
        w = _bicubic_aa_kernel((taps - center + 0.5) / stretch)
        total = w.sum()
        if total != 0.0:
            w = w / total
        mat[i, lo:hi] = w
    return mat


def resample_abs_pos_embed_np(posemb, new_size, old_size=None, num_prefix_tokens=1):
    """Resample ``(1, prefix + H*W, C)`` position embeddings to ``new_size`` grid (numpy, float64 math).

    Same result as timm's ``resample_abs_pos_embed`` (bicubic, antialias, align_corners=False); the
    prefix (class) tokens are kept as they are. A square old grid is assumed when ``old_size`` is None.
    """
    posemb = np.asarray(posemb)
    new_size = to_2tuple(new_size)
    num_grid = posemb.shape[1] - num_prefix_tokens
    if old_size is None:
        side = int(math.sqrt(num_grid))
        if side * side != num_grid:
            raise ValueError(f"cannot infer a square grid from {num_grid} position tokens; pass old_size")
        old_size = (side, side)
    old_size = to_2tuple(old_size)
    if tuple(old_size) == tuple(new_size):
        return posemb
    prefix, grid = posemb[:, :num_prefix_tokens], posemb[:, num_prefix_tokens:]
    dim = grid.shape[-1]
    grid = grid.reshape(old_size[0], old_size[1], dim).astype(np.float64)
    rows = _resize_matrix(old_size[0], new_size[0])
    cols = _resize_matrix(old_size[1], new_size[1])
    out = np.einsum("ih,hwc,jw->ijc", rows, grid, cols).reshape(1, new_size[0] * new_size[1], dim)
    return np.concatenate([prefix, out.astype(posemb.dtype)], axis=1)
