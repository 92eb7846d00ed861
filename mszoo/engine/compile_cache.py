"""Where a run's compiled graphs are cached: a directory named by everything that shapes them.

MindSpore's compile cache (``MS_COMPILER_CACHE_ENABLE`` / ``MS_COMPILER_CACHE_PATH``, MindSpore 2.7 to 2.10) stores
each graph a process compiles, numbered in compile order, and a later process reuses them when its Python
sources hash the same. It does not look at the network's widths or the input shapes: a run with another
``model_kwargs`` or ``batch_size`` from the same sources gets the old graph (a wrong answer, seen with MindSpore
2.10). So the directory is named by a hash of what shapes the graphs, and a run never finds another run's:

- the resolved config, without the keys that never reach a graph (``NOT_IN_GRAPH``: paths, how long, how
  often to log or save, the loader's processes);
- the source of the ``mszoo`` package (every ``.py`` and the fused kernels' ``.cc``);
- the MindSpore and Python versions, the number of devices, and the ``MS_*`` / ``MSZOO_*`` environment
  variables (``MSZOO_FUSED_KERNELS`` changes the graph) other than the cache's own.

MindSpore also numbers the cached graphs in compile order and does not check their inputs. That order is fixed
by the source (hashed above): the trainer compiles its train step first, always, and evaluation pads its last
batch, so it has one graph (``mszoo.engine.evaluator.padded_batch``).

Weights are not part of a cached graph (the run's parameters are used), so resuming or fine-tuning reuses it.
This module only computes the place; ``mszoo.cli.use_compile_cache`` (entry points only) turns it on.
"""
import hashlib
import json
import os
import sys

from mszoo.constants import cache_dir

# Config keys that choose files, run length, logging, saving or the host-side loader: never part of a graph.
NOT_IN_GRAPH = frozenset({
    "data_url", "train_dir", "val_dir", "train_num_samples", "val_num_samples", "num_parallel_workers",
    "output_dir", "run_name", "resume", "pretrained", "epochs", "steps_per_epoch", "eval_every",
    "ckpt_keep_num", "best_ckpt_num", "ckpt_save_every_seconds", "ckpt_save_every_step", "print_loss_every",
    "progress", "device_id", "file_format", "file_name", "compile_cache",
})
# Environment variables that name or switch the cache itself (not what is compiled).
OWN_ENV = frozenset({"MSZOO_CACHE", "MSZOO_DEBUG", "MS_COMPILER_CACHE_ENABLE", "MS_COMPILER_CACHE_PATH"})
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_digest(root=None):
    """SHA-256 over the package's ``.py`` and ``.cc`` files (relative path and bytes), in sorted order."""
    root = root or PACKAGE_ROOT
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith((".py", ".cc"))):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def graph_inputs(cfg, group_size, ms_version, environ=None):
    """The JSON-able record of everything the run's graphs depend on (hashed by ``compile_cache_key``)."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in sorted(environ.items()) if k.startswith(("MS_", "MSZOO_")) and k not in OWN_ENV}
    return dict(config={k: cfg[k] for k in sorted(cfg) if k not in NOT_IN_GRAPH}, source=source_digest(),
                mindspore=ms_version, python=list(sys.version_info[:2]), group_size=group_size, env=env)


def compile_cache_key(cfg, group_size, ms_version, environ=None):
    """A short hex key: equal for two runs whose graphs are the same, different otherwise."""
    text = json.dumps(graph_inputs(cfg, group_size, ms_version, environ), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def compile_cache_dir(cfg, group_size, ms_version, environ=None):
    """``$MSZOO_CACHE/compile/<key>``: the directory MindSpore caches this run's graphs in."""
    return os.path.join(cache_dir(), "compile", compile_cache_key(cfg, group_size, ms_version, environ))
