"""Training checkpoints: atomic writes and the full training state.

A training checkpoint is a regular MindSpore ``.ckpt`` (read with MindSpore's own loader, no pickle):

- model weights under their own names (``create_model(pretrained=...)`` / ``eval.py`` load it directly);
- optimizer state ``optimizer.step`` and ``optimizer.<slot>.<name>`` (Adam moments, momentum buffers);
- loss-scale state ``loss_scale.scale``, ``loss_scale.good_steps``, ``loss_scale.overflow_count``;
- EMA weights ``ema.<name>`` (when ``with_ema``);
- ``train_state``: JSON text with ``epochs_done`` (completed epochs), ``epoch_step`` (optimizer steps
  already done in the epoch in progress; 0 at an epoch boundary), ``global_step``, ``steps_per_epoch``,
  the best-checkpoint list, the last validation metrics and a format version;
- ``config``: the resolved config as YAML text; ``class_names``: JSON list of class names in label order;
- ``model_record``: what the checkpoint holds (arch, classes, model kwargs, input size, class names, eval
  preprocessing; see ``mszoo.models.record``), so eval, infer and export need nothing but the checkpoint.

Files are written to a temporary name in the same directory, flushed to disk, then renamed over the
target (``os.replace`` is atomic on POSIX and Windows), so a kill at any moment leaves either the old or
the new file, never a truncated one.
"""
import contextlib
import glob
import json
import os
import shutil

import mindspore as ms
import numpy as np

from mszoo.fileio import written_as
from mszoo.models.loading import CheckpointFile
from mszoo.models.record import RECORD_KEY, record_to_text

FORMAT_VERSION = 1


def _make_readable(path):
    # MindSpore marks saved checkpoints read-only (0400); make them ordinary files (0644 minus umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def remove_stale_tmp(directory):
    """Delete temporary files left by a process killed while writing a checkpoint (ours and MindSpore's own
    ``<name>.tmp`` intermediate file)."""
    for path in glob.glob(os.path.join(directory, ".*.tmp.ckpt")) + glob.glob(os.path.join(directory, ".*.tmp.tmp")):
        with contextlib.suppress(OSError):
            os.remove(path)


def save_checkpoint_atomic(path, tensors, train_state=None, config_text=None, class_names=None, record=None):
    """Write ``tensors`` (``{name: Parameter | Tensor | ndarray}``) and metadata to ``path`` atomically."""
    save_list = []
    for name, value in tensors.items():
        if isinstance(value, np.ndarray):
            value = ms.Tensor(value)
        save_list.append({"name": name, "data": value})
    append = {}
    if train_state is not None:
        append["train_state"] = json.dumps(dict(train_state, format=FORMAT_VERSION), sort_keys=True)
    if config_text is not None:
        append["config"] = config_text
    if class_names is not None:
        append["class_names"] = json.dumps(list(class_names))
    if record is not None:
        append[RECORD_KEY] = record_to_text(record)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with written_as(path) as tmp:
        ms.save_checkpoint(save_list, tmp, append_dict=append or None)
        _make_readable(tmp)
    return path


def copy_atomic(src, dst):
    """Copy a file to ``dst`` through a temporary file and a rename."""
    with written_as(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


class TrainingCheckpoint(CheckpointFile):
    """A read checkpoint (``tensors``, ``meta``, ``record``, ``group()``) with its training metadata."""

    @property
    def train_state(self):
        return json.loads(self.meta["train_state"]) if "train_state" in self.meta else None

    @property
    def config_text(self):
        return self.meta.get("config")


def load_training_checkpoint(path):
    """Read a checkpoint written by ``save_checkpoint_atomic`` (or any MindSpore ``.ckpt``)."""
    return TrainingCheckpoint(path)


def resolve_resume_path(resume):
    """``--resume`` accepts a run directory (its ``last.ckpt``) or a checkpoint file."""
    if os.path.isdir(resume):
        path = os.path.join(resume, "last.ckpt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"resume: no last.ckpt in run directory {resume}")
        return path
    if not os.path.isfile(resume):
        raise FileNotFoundError(f"resume: not found: {resume}")
    return resume


def assign_parameters(params, values, what):
    """Set every Parameter in ``params`` from ``values`` (name -> ndarray); a missing/mis-shaped entry raises."""
    params = list(params)
    missing = [p.name for p in params if p.name not in values]
    if missing:
        more = f" ... (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ValueError(f"{what}: checkpoint lacks {', '.join(missing[:5])}{more}")
    for p in params:
        value = values[p.name]
        if tuple(value.shape) != tuple(p.shape):
            raise ValueError(f"{what}: {p.name} has shape {tuple(value.shape)} in the checkpoint, "
                             f"{tuple(p.shape)} in the model")
        p.set_data(ms.Tensor(value.astype(ms.dtype_to_nptype(p.dtype))))
