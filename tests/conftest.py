"""Test session setup: quiet MindSpore logs, CPU device, repo root on sys.path; with CI set, skips fail."""
import gc
import logging
import os
import sys
import time

os.environ.setdefault("GLOG_v", "3")
# eval.py / infer.py run MindSpore unless a test is about the default backend (tests/deploy/test_default_backend.py
# removes this): the OpenVINO default exports every checkpoint once, a cost the other tests need not pay.
os.environ["MSZOO_BACKEND"] = "mindspore"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import mindspore as ms  # noqa: E402
import pytest  # noqa: E402

from mszoo.cpu.launch import set_cpu_device  # noqa: E402
from tests.ci_skips import (  # noqa: E402,F401
    pytest_make_collect_report,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)
from tests.shared import once_per_run, run_directory  # noqa: E402

set_cpu_device()  # as the entry points do: the oneDNN cap, synchronous launch (PyNative 2-15x faster here)
ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture(scope="session", autouse=True)
def mszoo_cache_of_the_run(tmp_path_factory):
    """``$MSZOO_CACHE`` (compile cache, IR cache, downloads) is one directory of this pytest run, shared by its xdist
    workers and the processes they start: the suite writes nothing under ``~/.cache/mszoo``, and what one run
    cached never makes the next one pass."""
    path = run_directory(tmp_path_factory) / "mszoo_cache"
    path.mkdir(exist_ok=True)
    os.environ["MSZOO_CACHE"] = str(path)
    yield


COMPILE_CACHE_VARIABLES = ("MS_COMPILER_CACHE_ENABLE", "MS_COMPILER_CACHE_PATH")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Once a test's fixtures (monkeypatch's too) are torn down: a slow test's leftovers are collected, and no test
    may leave MindSpore's compile-cache variables changed or MindSpore in graph mode. Kept graphs slow every later
    compile in the worker (a recipe's step 17 s -> 52 s after ten others); the variables in ``os.environ`` would
    make every later compile in the worker, and every process it starts, read one unkeyed cache (stale graphs, or
    MindSpore hashing pytest's ``-c`` as the entry script); graph mode left behind made the next file's
    ``ms.grad`` compile its lambdas as a graph (which failed)."""
    result = yield
    if time.monotonic() - item.stash.get(_STARTED_KEY, time.monotonic()) > 1.0:
        gc.collect()  # a slow test's models sit in reference cycles: freed now, their compiled graphs go with them
    before = item.stash.get(_CACHE_VARIABLES_KEY, None)
    after = {k: os.environ.get(k) for k in COMPILE_CACHE_VARIABLES}
    if before is not None and after != before:
        for key, value in before.items():  # the next tests start clean
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        raise AssertionError(f"{item.nodeid} left MindSpore's compile-cache variables changed: {before} -> {after}")
    if ms.get_context("mode") != ms.PYNATIVE_MODE:  # a later test's ms.grad would compile its lambdas as a graph
        ms.set_context(mode=ms.PYNATIVE_MODE)
        raise AssertionError(f"{item.nodeid} left MindSpore in graph mode (use the graph_mode fixture)")
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_CACHE_VARIABLES_KEY] = {k: os.environ.get(k) for k in COMPILE_CACHE_VARIABLES}
    item.stash[_STARTED_KEY] = time.monotonic()


_CACHE_VARIABLES_KEY = pytest.StashKey[dict]()
_STARTED_KEY = pytest.StashKey[float]()


@pytest.fixture(autouse=True)
def mszoo_logs_reach_caplog(monkeypatch):
    """``mszoo.logger.get_logger`` stops the library's logger from propagating once a run has set it up; caplog
    reads records at the root, so each test gets them whatever ran earlier in the same process."""
    monkeypatch.setattr(logging.getLogger("mszoo"), "propagate", True)


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
    """The digits PNG folders, written once per test run (tests/shared.py)."""
    from mszoo.data import prepare_digits

    def make(directory):
        prepare_digits(str(directory), seed=0)
        return str(directory)

    return once_per_run(tmp_path_factory, "digits_cache", make)


def script(name, *args, timeout=600):
    """Run a root script as a user would (``python NAME.py ARGS``); returns the CompletedProcess."""
    import subprocess

    return subprocess.run([sys.executable, os.path.join(ROOT, name), *args], capture_output=True, text=True,
                          env=dict(os.environ, GLOG_v="3"), cwd=ROOT, timeout=timeout)


# A tiny two-stage PCPVT on 16 px digits, with model_kwargs the scripts cannot guess.
TINY_SELF_DESCRIBING = {"embed_dims": [16, 24], "depths": [1, 1], "num_heads": [1, 1], "mlp_ratios": [2, 2],
                        "sr_ratios": [1, 1], "patch_size": 2}


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, digits_cache):
    """A 10-class run of the tiny model trained by ``train.py`` (3 short epochs, ~55 % val top-1: well above
    chance, so precision and export comparisons mean something): its best checkpoint, a folder of a few val
    images (``photos``) and the digits dataset root."""
    return once_per_run(tmp_path_factory, "trained_tiny", lambda out: _train_tiny(out, digits_cache))


def _train_tiny(out, digits_cache):
    import json
    import shutil

    from mszoo.data import prepare_digits

    run = script("train.py", "--dataset", "digits", "--data_url", digits_cache, "--arch", "twins_pcpvt_small",
                 "--model_kwargs", json.dumps(TINY_SELF_DESCRIBING), "--image_size", "16", "--crop_pct", "1.0",
                 "--auto_augment", "none", "--re_prob", "0", "--mixup", "0", "--cutmix", "0", "--hflip", "0",
                 "--batch_size", "32", "--epochs", "3", "--steps_per_epoch", "44", "--warmup_length", "0",
                 "--base_lr", "0.003", "--weight_decay", "0.0", "--label_smoothing", "0.0", "--color_jitter", "0",
                 "--min_crop", "0.7",
                 "--cooldown_epochs", "0", "--val_num_samples", "64", "--num_parallel_workers", "1",
                 "--progress", "false", "--output_dir", str(out), "--run_name", "r")
    assert run.returncode == 0, run.stdout + run.stderr
    root = prepare_digits(digits_cache)
    photos = out / "photos"
    photos.mkdir()
    for digit in ("3", "7"):
        for name in sorted(os.listdir(os.path.join(root, "val", digit)))[:2]:
            shutil.copy(os.path.join(root, "val", digit, name), photos / f"{digit}_{name}")
    return {"ckpt": str(out / "r" / "best.ckpt"), "photos": str(photos), "digits": root}
