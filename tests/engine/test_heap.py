"""Returning the C heap's freed pages to the operating system (src/engine/heap.py)."""
import ctypes

import pytest

from src.engine.heap import _glibc, release_free_heap


def _rss_anon_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


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
    before = _rss_anon_mb()
    for block in blocks:
        libc.free(block)
    freed_but_held = before - _rss_anon_mb()
    assert release_free_heap()
    returned = before - _rss_anon_mb()
    libc.free(pin)
    assert freed_but_held < 20, freed_but_held
    assert returned > 60, returned
