"""Fixture data made once per pytest run, however many xdist workers ask for it.

Each xdist worker has a session of its own, so a ``scope="session"`` fixture runs once per worker: the slow
ones (a training run, full-size exports) would run twice. ``once_per_run`` keeps their result in the run's
shared temporary directory (the parent of every worker's ``basetemp``), made by the first worker that asks while
the others wait on a file lock, then read by all.
"""
import fcntl
import json
import os
from contextlib import contextmanager


def run_directory(tmp_path_factory):
    """The directory every worker of this pytest run shares (the session's own ``basetemp`` without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _exclusive(lock_path):
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def once_per_run(tmp_path_factory, name, make):
    """``make(directory)``'s JSON-able result, ``make`` run once per pytest run in ``directory`` (``name`` under the
    run directory). A ``make`` that raises records nothing: the next worker to ask tries again."""
    root = run_directory(tmp_path_factory)
    directory, done = root / name, root / f"{name}.json"
    with _exclusive(root / f"{name}.lock"):
        if not done.exists():
            directory.mkdir(exist_ok=True)
            result = make(directory)
            done.write_text(json.dumps(result))
    return json.loads(done.read_text())
