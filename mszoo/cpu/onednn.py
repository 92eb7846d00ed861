"""The oneDNN instruction-set cap of MindSpore's CPU kernels (set by the entry points, never on import).

oneDNN inside MindSpore runs plain-layout (NCHW) convolutions on a reference reorder when it may use AVX-512
(``ONEDNN_VERBOSE=1``: ``jit_uni_ncsp:conv+ref:any``); capped at AVX2 it takes its jit GEMM path, but then every
matrix product loses AVX-512 too. No convolution is left in a model that runs the fused CPU kernels, in a training
step or in MindSpore evaluation and inference: the patch embeddings are matrix products (``layers.PatchConv``,
``layers.UnfoldConv``) and Twins' depthwise PEG is a fused kernel (``layers.PosConv``, ``mszoo/cpu/kernels.py``).
Only without those kernels (``MSZOO_FUSED_KERNELS=0`` or no C++ compiler) does the PEG run as a convolution.
Whether the cap pays is measured per CPU (``benchmark.py --mode train --compare timm --isa auto,AVX2``,
docs/benchmarks.md) and decided from the CPU's feature flags (``/proc/cpuinfo``) and the kernels, never the vendor
name: ``isa_cap``. The value is read when the first oneDNN kernel runs, so it must be set before any model runs; a
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


def isa_cap(flags, fused_kernels=True):
    """The ``ONEDNN_MAX_CPU_ISA`` to set for a CPU with these flags, or None to leave oneDNN uncapped.

    - no ``avx512f``: None (the cap would change nothing);
    - ``amx_tile`` (full-width AVX-512): None, since capped training ran below timm there (0.65-0.86x);
    - a process whose models run the fused kernels (``fused_kernels``): None, since they run no convolution
      (Zen 4, measured: training twins_pcpvt_small 1.16x timm uncapped against 1.03x capped, TNT the same either
      way; evaluation 891-908 ms per batch against 969-1,001 ms capped);
    - other AVX-512 CPUs otherwise: AVX2, since Twins' PEG runs as a convolution, on the reference kernel when
      uncapped (Zen 4: training 0.74-0.77x timm uncapped against 1.00x capped; docs/benchmarks.md, "oneDNN ISA
      cap and convolutions as matrix products").
    """
    if "avx512f" not in flags or "amx_tile" in flags or fused_kernels:
        return None
    return ONEDNN_CPU_ISA


def configure_cpu_kernels(flags=None, fused_kernels=False):
    """Cap oneDNN's instruction set for MindSpore's CPU kernels where ``isa_cap`` says it pays, unless the user
    chose one. ``fused_kernels``: the process gives its models the fused kernels (training; MindSpore evaluation and
    inference), so they run them where they are expected (``mszoo.cpu.kernels.fused_kernels_expected``); a model
    without them runs Twins' PEG as a convolution. Returns the cap in force (None: uncapped)."""
    if fused_kernels:
        from mszoo.cpu.kernels import fused_kernels_expected

        fused_kernels = fused_kernels_expected()
    cap = isa_cap(cpu_flags() if flags is None else flags, fused_kernels)
    if cap is not None:
        os.environ.setdefault("ONEDNN_MAX_CPU_ISA", cap)
    return os.environ.get("ONEDNN_MAX_CPU_ISA")
