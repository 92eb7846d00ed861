"""Files written so that a kill never leaves half of one, and their hashes: the one home of both.

Every file the project writes for a user (configs, metrics, plots, sidecars, converted weights, checkpoints,
built kernels) goes through a temporary file beside its target that is flushed to disk and then renamed over it
(``os.replace`` is atomic), and the folder is synced, so a kill or a power cut leaves the old file or the new
one. A leaf module: it imports nothing from the rest of mszoo.
"""
import contextlib
import hashlib
import os


def temp_path(path):
    """A temporary name beside ``path``, unique to this process, ending in ``path``'s extension (matplotlib infers
    the format from it; MindSpore appends ``.ckpt`` to any other name)."""
    directory, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(directory, f".{stem}.{os.getpid()}.tmp{ext}")


def fsync_dir(directory):
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(tmp, path):
    """Flush the finished temporary file ``tmp`` to disk and rename it over ``path``."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    return path


@contextlib.contextmanager
def written_as(path):
    """``with written_as(path) as tmp:`` write ``tmp`` (by any writer that takes a file name); on success it
    replaces ``path``, on an error it is removed and ``path`` is left as it was."""
    tmp = temp_path(path)
    if os.path.exists(tmp):  # left by a killed process that had this pid
        os.remove(tmp)
    try:
        yield tmp
        commit(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """``open(path, mode)`` for writing, through a temporary file that replaces ``path`` when the block ends
    without an error (``kwargs`` go to ``open``: ``encoding``, ``newline``)."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with written_as(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def sha256_file(path):
    """The SHA-256 of a file's bytes, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
