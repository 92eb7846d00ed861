"""Test session setup: quiet MindSpore logs, CPU device, repo root on sys.path; with CI set, skips fail."""
import os
import sys

os.environ.setdefault("GLOG_v", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import mindspore as ms  # noqa: E402
import pytest  # noqa: E402

from src.cli import configure_cpu_kernels  # noqa: E402
from tests.ci_skips import (pytest_make_collect_report, pytest_runtest_makereport,  # noqa: E402,F401
                            pytest_sessionfinish, pytest_terminal_summary)

configure_cpu_kernels()
ms.set_device("CPU")
ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture
def pynative():
    """Run the test in PyNative mode and restore it afterwards."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture
def graph_mode():
    """Run the test in GRAPH mode, then go back to PyNative for the other tests."""
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture(scope="session")
def digits_cache(tmp_path_factory):
    """The digits PNG folders, written once per test session."""
    from src.data import prepare_digits

    cache = str(tmp_path_factory.mktemp("digits_cache"))
    prepare_digits(cache, seed=0)
    return cache
