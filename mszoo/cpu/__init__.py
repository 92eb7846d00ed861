"""The CPU backend: what makes MindSpore's CPU kernels fast and lean enough to train these models.

- ``kernels.py`` + ``fused_cpu.cc``: fused C++ kernels (LayerNorm, GELU, swap-axes, softmax and bias gradients,
  Twins' PEG, the unfold, DropPath's per-sample scale, the gradient norm's sum of squares) as MindSpore AOT custom
  ops, built on first use and cached; ``FusedKernelUser`` is the base of every cell that can run one, and
  ``use_kernel`` the one rule of when it does.
- ``lean_ops.py``: training-time formulations with the same numbers that keep no per-element index tables.
- ``transpose.py``: ``Permute`` and ``SplitHeads``, every transpose of the models.
- ``heap.py``: returning the heap a compile freed to the operating system.
- ``onednn.py``: the oneDNN instruction-set setting of MindSpore's CPU kernels.
- ``launch.py``: ``set_cpu_device``, MindSpore on the CPU as every mszoo process runs it: the oneDNN cap, then
  kernels launched synchronously (its asynchronous dispatch threads only compete with the kernels for the same
  cores).

The model layers reach this package only through ``mszoo/models/layers/backend.py`` (tested). It imports nothing
from the rest of mszoo but the leaves ``mszoo.constants`` and ``mszoo.fileio``.
"""
