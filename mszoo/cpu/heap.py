"""Returning the C heap's free pages to the operating system once a graph has compiled.

Compiling a MindSpore graph allocates about 300 KB of C heap per graph node, and about half of it is freed
when the compile ends, in holes between the blocks the compiled graph keeps. glibc keeps such free pages
resident until ``malloc_trim`` hands them back. Measured on the train step at batch 8 (docs/benchmarks.md):
TNT-S returns 160-180 MB, Twins-PCPVT-S 120 MB, and the training peak RSS falls by as much, since the first
step's activations are allocated after the release instead of on top of the holes.
"""
import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=None)
def _glibc():
    """The C library when it is glibc, looked up once (``find_library`` runs ``ldconfig``), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_free_heap():
    """Give the C heap's free pages back to the operating system (glibc ``malloc_trim(0)``).

    Returns whether it could: False without glibc (musl, macOS), where there is nothing to do."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
