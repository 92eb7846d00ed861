"""Transposes that train on CPU without MindSpore's per-element index tables.

MindSpore's CPU ``Transpose`` kernel precomputes a source index for every element when its
permutation is a compile-time constant, and keeps it for the life of the compiled graph, forward and
backward (a large part of a training step's memory: docs/benchmarks.md). Every
transpose in these models swaps two adjacent groups of axes (tokens <-> heads, channels <-> pixels,
window rows <-> window columns): viewed as ``(A, B, C, D)`` it is ``(A, C, B, D)``, which the fused CPU
kernel ``MszooSwapAxes`` (``mszoo/cpu/kernels.py``) copies in tiles with no table, and is its own gradient.

``Permute`` is one such transpose with a fixed permutation; ``SplitHeads`` the head split of a joint
projection, ``(..., N, parts * H * D)`` -> ``parts`` tensors ``(..., H, N, D)``. They use the kernel in
float32 training when ``set_fused_kernels`` gave it to them; evaluation, export, float16/bfloat16 and
runs without the kernels compute the ops they replace (exported graphs are unchanged). Pure data movement:
the numbers are the same bit for bit.
"""
from mindspore import ops

from .kernels import FusedKernelUser


def swap_groups(perm):
    """``(i, j, k)`` when ``perm`` swaps axes ``[i, j)`` with ``[j, k)`` and keeps the rest; else ValueError."""
    perm = tuple(perm)
    rank = len(perm)
    if sorted(perm) != list(range(rank)):
        raise ValueError(f"{perm} is not a permutation")
    i = next((axis for axis in range(rank) if perm[axis] != axis), None)
    if i is not None:
        j = perm[i]
        for k in range(j + 1, rank + 1):
            if perm == tuple(range(i)) + tuple(range(j, k)) + tuple(range(i, j)) + tuple(range(k, rank)):
                return i, j, k
    raise ValueError(f"permutation {perm} does not swap two adjacent groups of axes")


def _prod(dims):
    n = 1
    for d in dims:
        n *= d
    return n


class _SwapKernelUser(FusedKernelUser):
    """A cell that may be handed the swap-axes kernel (see ``FusedKernelUser``)."""

    fused_kind = "swap_axes"

    def swap(self, x, a, b, c, d):
        """``x`` viewed as ``(a, b, c, d)`` -> ``(a, c, b, d)`` with the kernel."""
        return self.fused(x.reshape(a, b, c, d))


class Permute(_SwapKernelUser):
    """``x.transpose(perm)`` for a fixed ``perm`` that swaps two adjacent groups of axes."""

    def __init__(self, perm):
        super().__init__()
        self.perm = tuple(perm)
        self.i, self.j, self.k = swap_groups(self.perm)

    def construct(self, x):
        if self.use_kernel(x):
            s = x.shape
            i, j, k = self.i, self.j, self.k
            b, c = _prod(s[i:j]), _prod(s[j:k])
            out = s[:i] + s[j:k] + s[i:j] + s[k:]
            if b == 1 or c == 1:  # moving a group of size 1 moves no element (Twins' single-head stage)
                return x.reshape(out)
            return self.swap(x, _prod(s[:i]), b, c, _prod(s[k:])).reshape(out)
        return ops.transpose(x, self.perm)

    def extend_repr(self):
        return f"perm={self.perm}"


class SplitHeads(_SwapKernelUser):
    """``(*lead, N, parts * H * D)`` -> ``parts`` tensors ``(*lead, H, N, D)`` (q/k/v of a joint projection).

    Export form: reshape to ``(*lead, N, parts, H, D)``, move ``parts`` first and ``H`` before ``N`` in one
    transpose, split along axis 0 (as timm). Kernel form: ``(A, N, parts * H, D)`` -> ``(A, parts * H, N, D)``,
    split along axis 1. (``ops.split``, not indexing: MindSpore's CPU StridedSlice is slow, forward and
    backward.)"""

    def __init__(self, parts, num_heads):
        super().__init__()
        if parts < 2:
            raise ValueError("SplitHeads is for joint projections (parts >= 2); use Permute for one")
        self.parts = parts
        self.num_heads = num_heads

    def construct(self, x):
        s = x.shape
        lead, n = s[:-2], s[-2]
        head_dim = s[-1] // (self.parts * self.num_heads)
        if self.use_kernel(x):
            y = self.swap(x, _prod(lead), n, self.parts * self.num_heads, head_dim)
            parts = ops.split(y, self.num_heads, 1)
            return tuple(part.reshape(lead + (self.num_heads, n, head_dim)) for part in parts)
        r = len(lead)
        perm = (r + 1,) + tuple(range(r)) + (r + 2, r, r + 3)
        y = x.reshape(lead + (n, self.parts, self.num_heads, head_dim)).transpose(perm)
        return tuple(part.squeeze(0) for part in ops.split(y, 1, 0))

    def extend_repr(self):
        return f"parts={self.parts}, num_heads={self.num_heads}"
