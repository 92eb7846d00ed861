"""The OpenVINO IR cache behind eval.py / infer.py's default CPU path: a checkpoint is exported once, then run.

An entry is ``$MSZOO_CACHE/ir/KEY/`` (default ``~/.cache/mszoo/ir``) holding ``model.xml``, ``model.bin`` and
the sidecar ``model.xml.json`` (the model record the export resolved). ``KEY`` hashes everything the IR or
its record depends on: the checkpoint's SHA-256, every model or preprocessing key the user set explicitly
(arch, classes, channels, model_kwargs, image size, crop, interpolation, mean, std), and the mszoo, MindSpore
and OpenVINO versions. A changed checkpoint, setting or version is therefore another entry, exported afresh;
a stale IR is never run.

The files enter an entry through ``mszoo.fileio.commit`` (flushed, then renamed), weights first and the sidecar
last: an entry counts only once its sidecar is there, so an export killed half-way leaves no entry that is
read. Reading an entry imports neither MindSpore nor the model package.
"""
import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import time

from mszoo.constants import cache_dir
from mszoo.fileio import commit, sha256_file
from mszoo.resolve import DATA_KEYS, is_explicit

from .sidecar import sidecar_path

CACHE_FORMAT = 1
KEYED = ("arch", "num_classes", "in_chans", "model_kwargs") + DATA_KEYS
IR_NAME = "model.xml"


def cache_root():
    return os.path.join(cache_dir(), "ir")


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def entry_key(cfg, checkpoint_digest):
    """The cache key of the checkpoint whose SHA-256 is ``checkpoint_digest``, exported as ``cfg`` asks (module
    docstring)."""
    import mszoo

    explicit = {key: cfg[key] for key in KEYED if is_explicit(cfg, key)}
    parts = dict(format=CACHE_FORMAT, checkpoint=checkpoint_digest, explicit=explicit,
                 mszoo=mszoo.__version__, mindspore=_version("mindspore"), openvino=_version("openvino"))
    text = json.dumps(parts, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def check_unchanged(checkpoint_path, digest):
    """After an export: the checkpoint still has the bytes its key was made of, else ``ValueError`` (a file
    rewritten during the export, e.g. by a training run, must not enter the cache under its old hash)."""
    if sha256_file(checkpoint_path) != digest:
        raise ValueError(f"{checkpoint_path} changed while it was being exported; run again")


def entry_ir(key):
    """The IR path of entry ``key`` (which may not exist yet)."""
    return os.path.join(cache_root(), key, IR_NAME)


def lookup(key):
    """``(ir_path, record)`` of a complete entry, else None (absent, or left incomplete by a killed export)."""
    ir = entry_ir(key)
    bin_path = os.path.splitext(ir)[0] + ".bin"
    if not (os.path.isfile(sidecar_path(ir)) and os.path.isfile(ir) and os.path.isfile(bin_path)):
        return None
    try:
        with open(sidecar_path(ir), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return (ir, record) if isinstance(record, dict) and "arch" in record else None


STALE_STAGING_S = 24 * 3600  # a staging folder this old was left by a killed export (exports take minutes)


def staging_dir():
    """A fresh folder beside the entries (same file system, so committing is a rename) for one export; staging
    folders a killed export left a day ago or more are removed first."""
    root = cache_root()
    os.makedirs(root, exist_ok=True)
    for name in os.listdir(root):
        path = os.path.join(root, name)
        with contextlib.suppress(OSError):
            if name.startswith(".export-") and time.time() - os.path.getmtime(path) > STALE_STAGING_S:
                shutil.rmtree(path, ignore_errors=True)
    return tempfile.mkdtemp(prefix=".export-", dir=root)


def commit_entry(exported_ir, key):
    """Move an export (``exported_ir`` with its ``.bin`` and sidecar, in a ``staging_dir``) into entry ``key``:
    weights, graph, then the sidecar that completes the entry. Returns the entry's IR path."""
    ir = entry_ir(key)
    os.makedirs(os.path.dirname(ir), exist_ok=True)
    stem, target_stem = os.path.splitext(exported_ir)[0], os.path.splitext(ir)[0]
    commit(stem + ".bin", target_stem + ".bin")
    commit(exported_ir, ir)
    commit(sidecar_path(exported_ir), sidecar_path(ir))
    shutil.rmtree(os.path.dirname(exported_ir), ignore_errors=True)
    return ir
