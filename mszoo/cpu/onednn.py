"""The oneDNN instruction-set cap of MindSpore's CPU kernels (set by the entry points, never on import).

oneDNN inside MindSpore picks a reference (scalar) kernel for plain-layout NCHW convolutions when it may use
AVX-512; capped at AVX2 it takes its jit GEMM path (measured in docs/benchmarks.md). The value is read when the
first oneDNN kernel runs, so it must be set before any model runs.
"""
import os

ONEDNN_CPU_ISA = "AVX2"


def configure_cpu_kernels():
    """Cap oneDNN's instruction set for MindSpore's CPU kernels unless the user chose one."""
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", ONEDNN_CPU_ISA)
