"""Returning the C heap's freed pages to the operating system (mszoo/cpu/heap.py)."""
import os
import subprocess
import sys

import pytest

from mszoo.cpu.heap import _glibc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# In a fresh process: a test worker's heap, shaped by the tests before, decides how much of a new allocation
# lands in its old holes, and so how much a trim can return (36 MB once instead of 58.8).
PROBE = r"""
import ctypes, sys
sys.path.insert(0, {root!r})
from mszoo.cpu.heap import _glibc, release_free_heap

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024.0 for line in f if line.startswith("VmRSS"))

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
trimmed = release_free_heap()
print(freed_but_held, before - rss_mb(), trimmed)
"""


@pytest.mark.skipif(_glibc() is None, reason="malloc_trim is glibc's")
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="RSS is read from /proc")
def test_release_free_heap_returns_freed_pages_held_below_a_live_block():
    run = subprocess.run([sys.executable, "-c", PROBE.format(root=ROOT)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    freed_but_held, returned, trimmed = run.stdout.split()
    assert trimmed == "True"
    assert float(freed_but_held) < 20, freed_but_held
    assert float(returned) > 40, returned  # most of the 80 MB
