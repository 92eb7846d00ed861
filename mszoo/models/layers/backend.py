"""The model layers' one hook into the CPU backend (``mszoo.cpu``): the cells whose training formulation or
fused kernel is the backend's. The layers hold the maths; which kernel computes it is decided in ``mszoo.cpu``
(``FusedKernelUser.use_kernel``), and no other module of ``mszoo.models`` imports the backend (tested)."""
from mszoo.cpu.kernels import FusedKernelUser
from mszoo.cpu.lean_ops import AttnValues, Linear2D, MulBySampleMask, QKScores, Softmax
from mszoo.cpu.transpose import Permute, SplitHeads

__all__ = ["FusedKernelUser", "AttnValues", "Linear2D", "MulBySampleMask", "QKScores", "Softmax", "Permute",
           "SplitHeads"]
