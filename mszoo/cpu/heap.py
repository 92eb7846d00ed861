"""Returning the C heap's free pages to the operating system once a graph has compiled.

Compiling a MindSpore graph frees much of the C heap it used, in holes between the blocks the compiled graph
keeps, and glibc keeps such free pages resident until ``malloc_trim`` hands them back: released before the
first step, its activations are not allocated on top of the holes (measured: docs/benchmarks.md).
"""
import ctypes
import ctypes.util
import functools


@functools.cache
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
