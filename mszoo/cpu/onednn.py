"""The oneDNN instruction-set cap of MindSpore's CPU kernels (set by the entry points, never on import).

oneDNN inside MindSpore runs plain-layout (NCHW) convolutions on a reference reorder when it may use AVX-512
(``ONEDNN_VERBOSE=1``: ``jit_uni_ncsp:conv+ref:any``); capped at AVX2 it takes its jit GEMM path, but then every
matrix product loses AVX-512 too. The models' convolutions on the training path are matrix products now
(``layers.PatchConv``, ``layers.UnfoldConv``); only Twins' depthwise position convolution (PEG) is left. Whether
the cap still pays is measured per CPU (``benchmark.py --mode train --compare timm --isa auto,AVX2``,
docs/benchmarks.md) and decided from the CPU's feature flags (``/proc/cpuinfo``), never its vendor name:
``isa_cap``. The value is read when the first oneDNN kernel runs, so it must be set before any model runs; a
user's own ``ONEDNN_MAX_CPU_ISA`` always wins.
"""
import os

ONEDNN_CPU_ISA = "AVX2"
CPUINFO = "/proc/cpuinfo"


def cpu_flags(path=CPUINFO):
    """The CPU's feature flags (the first ``flags`` line of ``/proc/cpuinfo``); empty where there is none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def isa_cap(flags):
    """The ``ONEDNN_MAX_CPU_ISA`` to set for a CPU with these flags, or None to leave oneDNN uncapped.

    - no ``avx512f``: None (the cap would change nothing);
    - ``amx_tile`` (full-width AVX-512): None, since capped training ran below timm there (not yet measured
      uncapped);
    - other AVX-512 CPUs (Zen 4, measured): AVX2, since on 256-bit units the matrix products gain little uncapped
      while Twins' depthwise PEG falls to the reference kernel (docs/benchmarks.md, "oneDNN ISA cap and
      convolutions as matrix products").
    """
    if "avx512f" not in flags or "amx_tile" in flags:
        return None
    return ONEDNN_CPU_ISA


def configure_cpu_kernels(flags=None):
    """Cap oneDNN's instruction set for MindSpore's CPU kernels where ``isa_cap`` says it pays, unless the user
    chose one. Returns the cap in force (None: uncapped)."""
    cap = isa_cap(cpu_flags() if flags is None else flags)
    if cap is not None:
        os.environ.setdefault("ONEDNN_MAX_CPU_ISA", cap)
    return os.environ.get("ONEDNN_MAX_CPU_ISA")
