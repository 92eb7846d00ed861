"""Returning the C heap's freed pages to the operating system (mszoo/cpu/heap.py)."""
import ctypes

import pytest

from mszoo.cpu.heap import _glibc, release_free_heap
from tests.models.helpers import rss_mb


@pytest.mark.skipif(_glibc() is None, reason="malloc_trim is glibc's")
def test_release_free_heap_returns_freed_pages_held_below_a_live_block():
    libc = _glibc()
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(1024) for _ in range(80_000)]  # 80 MB of small blocks, as a compile leaves them
    for block in blocks:
        ctypes.memset(block, 1, 1024)
    pin = libc.malloc(1024)  # a block still in use above them: free() alone cannot shrink the heap
    before = rss_mb()
    for block in blocks:
        libc.free(block)
    freed_but_held = before - rss_mb()
    assert release_free_heap()
    returned = before - rss_mb()
    libc.free(pin)
    assert freed_but_held < 20, freed_but_held
    assert returned > 40, returned  # most of the 80 MB (58.8 MB once, with the process's other threads busy)
