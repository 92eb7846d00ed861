"""Loading weights into a model: one function, one rule.

The rule (``load_weights``): every parameter of the model is present with its shape, and every weight
offered is a parameter of the model; otherwise ``CheckpointError`` names the keys. The one exception is
an explicit re-head for fine-tuning (``allow_rehead=True``): a classifier that is missing or has another
shape is left at its fresh init, and the replaced names are returned so the caller says so.
``create_model(pretrained=...)``, ``train.py --pretrained``, eval/infer/export and the PyTorch converter all
load through it; only fine-tuning passes ``allow_rehead``.

``mindspore.load_param_into_net`` never raises on missing or unexpected keys, so every check is ours.
"""
import json
import os
from collections.abc import Mapping
from typing import Any, Union

import mindspore as ms
import numpy as np

from .record import record_from_entries
from .seeds import recognise_seed

# Parameters that belong to the classifier (the only ones a fine-tuning re-head may replace).
HEAD_PREFIXES = ("head.", "head_dist.", "fc.", "classifier.")
# Entries of a training checkpoint that are not model weights (see mszoo/engine/checkpoint.py).
TRAINING_STATE_PREFIXES = ("optimizer.", "loss_scale.", "ema.")
# Wrappers some training code puts in front of the weights' names.
WRAPPER_PREFIXES = ("network.", "_backbone.", "model.")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model (message names the keys)."""


def short_list(names, limit=10):
    """``a, b, c ... (+N more)`` for error messages."""
    names = sorted(names)
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def head_classes(tensors):
    """Output classes of the classifier in ``tensors`` (name -> array; rows of its weight), or None."""
    for key in ("head.weight", "head.fc.weight", "fc.weight", "ema.head.weight"):
        value = tensors.get(key)
        if value is not None and np.ndim(value) == 2:
            return int(np.shape(value)[0])
    return None


def read_checkpoint(path):
    """Entries of a MindSpore checkpoint: name -> Parameter (weights) or str (metadata); clear error otherwise."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return ms.load_checkpoint(path)
    except Exception as exc:  # MindSpore raises ValueError/RuntimeError with long C++ stacks
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first}") from None


class CheckpointFile:
    """A read checkpoint: ``tensors`` (name -> ndarray), ``meta`` (name -> str) and its model ``record``.

    A checkpoint of the model-zoo code (no record; recognised by its parameter names, see seeds.py) has
    ``seed`` set to its ``SeedFormat`` and ``tensors`` already mapped to the names of that code's variant."""

    def __init__(self, path):
        self.path = path
        self.tensors, self.meta = {}, {}
        for name, value in read_checkpoint(path).items():
            if isinstance(value, (str, int, float, bool)):
                self.meta[name] = str(value)
            else:
                self.tensors[name] = value.asnumpy()
        try:
            self.record = record_from_entries(self.meta, path)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
        self.seed = None
        found = recognise_seed(self.tensors) if self.record is None else None
        if found is not None:
            self.seed, self.tensors = found

    @property
    def class_names(self):
        """Label names: the record's, else a ``class_names`` entry (JSON list), else None."""
        if self.record is not None:
            return self.record["class_names"]
        return json.loads(self.meta["class_names"]) if "class_names" in self.meta else None

    def group(self, prefix):
        """``{name without prefix: ndarray}`` of the entries under ``prefix.``."""
        n = len(prefix) + 1
        return {k[n:]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")}

    def model_weights(self, names):
        """The weights for a model with parameter ``names``: the EMA copy when the checkpoint has a complete
        one (it is what training validated), else the plain weights, a unique wrapper prefix removed.
        Returns ``(weights, which)`` with ``which`` in ("weights", "EMA weights")."""
        names = set(names)
        ema = self.group("ema")
        if ema and names <= set(ema):
            return ema, "EMA weights"
        tensors = self.tensors
        if not names & set(tensors):
            for prefix in WRAPPER_PREFIXES:
                stripped = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
                if names & set(stripped):
                    return stripped, "weights"
        return tensors, "weights"

    def head_classes(self):
        """Output classes of the checkpoint's classifier, or None."""
        return head_classes(self.tensors)


def load_weights(model: "ms.nn.Cell", params: Mapping[str, Any], source: str = "checkpoint", allow_rehead: bool = False,
                 ignore_prefixes: tuple[str, ...] = TRAINING_STATE_PREFIXES) -> list[str]:
    """Load ``params`` (name -> ndarray / Tensor / Parameter) into ``model`` by the one rule (module docstring).

    Entries under ``ignore_prefixes`` (a training checkpoint's optimizer, loss-scale and EMA state) are not
    weights and are skipped. Returns the sorted names of the classifier parameters left at their fresh init
    (non-empty only with ``allow_rehead``).
    """
    own = {p.name: p for p in model.get_parameters()}
    offered = {k: v for k, v in params.items() if not k.startswith(ignore_prefixes)}
    unexpected = [k for k in offered if k not in own]
    missing = [k for k in own if k not in offered]
    mismatched = [k for k in own if k in offered and tuple(np.shape(offered[k])) != tuple(own[k].shape)]
    replaced = []
    if allow_rehead:
        replaced = [k for k in missing + mismatched if k.startswith(HEAD_PREFIXES)]
        missing = [k for k in missing if k not in replaced]
        mismatched = [k for k in mismatched if k not in replaced]
    problems = []
    if missing:
        problems.append(f"missing {short_list(missing)}")
    if unexpected:
        problems.append(f"unexpected {short_list(unexpected)}")
    if mismatched:
        problems.append("shape mismatch " + short_list(
            f"{k} {tuple(np.shape(offered[k]))} vs model {tuple(own[k].shape)}" for k in mismatched))
    if problems:
        raise CheckpointError(f"{source} does not fit the model: {'; '.join(problems)}")
    weights = {k: _as_parameter(k, v, own[k].dtype) for k, v in offered.items() if k not in replaced}
    not_loaded, _ = ms.load_param_into_net(model, weights, strict_load=True)
    not_loaded = [k for k in not_loaded if k not in replaced]
    if not_loaded:
        raise CheckpointError(f"{source}: parameters not loaded: {short_list(not_loaded)}")
    return sorted(replaced)


def _as_parameter(name, value, dtype):
    if isinstance(value, ms.Parameter):
        return value
    if isinstance(value, ms.Tensor):
        value = value.asnumpy()
    return ms.Parameter(ms.Tensor(np.ascontiguousarray(value, dtype=ms.dtype_to_nptype(dtype))), name=name)


def load_pretrained(model: "ms.nn.Cell", checkpoint: Union["CheckpointFile", str, "os.PathLike[str]"],
                    allow_rehead: bool = False, adapt=None) -> tuple[list[str], str]:
    """Load ``checkpoint`` (a ``CheckpointFile``, or the path of a ``.ckpt``) into ``model`` by the one rule,
    with its EMA weights when complete.

    ``adapt(weights) -> weights`` runs first (the family's ``checkpoint_filter_fn`` when the model is built at
    another ``img_size``: position tables resampled or rebuilt as the converter's ``--img_size`` does).
    Returns ``(replaced, which)``: the re-initialised head parameters (fine-tuning only) and which weights
    were used ("weights" or "EMA weights").
    """
    ckpt = checkpoint if isinstance(checkpoint, CheckpointFile) else CheckpointFile(checkpoint)
    if not ckpt.tensors:
        raise CheckpointError(f"{ckpt.path} holds no weights")
    weights, which = ckpt.model_weights(p.name for p in model.get_parameters())
    if adapt is not None:
        weights = adapt(weights)
    return load_weights(model, weights, source=ckpt.path, allow_rehead=allow_rehead), which
