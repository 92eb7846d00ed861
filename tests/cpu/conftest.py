"""Fixtures shared by the CPU backend tests."""
import os

import pytest

from mszoo.cpu import kernels


@pytest.fixture(scope="session")
def kernel_cache(tmp_path_factory):
    """The kernels built once per session into a fresh cache directory (used by every test that trains)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MSZOO_KERNEL_CACHE", str(tmp_path_factory.mktemp("kernels")))
        mp.delenv("CXX", raising=False)
        mp.setenv("MSZOO_KERNEL_THREADS", "3")  # exercise the uneven split (the default is one thread)
        kernels.kernel_library.cache_clear()
        assert kernels.kernel_library() is not None
        yield os.environ["MSZOO_KERNEL_CACHE"]
    kernels.kernel_library.cache_clear()
