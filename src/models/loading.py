"""Loading MindSpore checkpoints into a model, with strict key and shape checks.

``mindspore.load_param_into_net`` never raises on missing or unexpected keys, so every check is ours.
"""
import os

import mindspore as ms

# Parameters that belong to the classifier; a shape mismatch there means "new head" (fine-tuning).
HEAD_PREFIXES = ("head.", "head_dist.", "fc.", "classifier.")


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model (message names the keys)."""


def read_checkpoint(path):
    """Parameters of a MindSpore checkpoint as a dict of name -> Parameter; clear error otherwise."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return ms.load_checkpoint(path)
    except Exception as exc:  # MindSpore raises ValueError/RuntimeError with long C++ stacks
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first}") from None


def _short(names, limit=10):
    names = sorted(names)
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def load_weights(model, params, source="checkpoint", strict=True, allow_head_mismatch=True):
    """Load ``params`` (name -> Parameter/Tensor) into ``model``.

    Non-model entries in ``params`` (optimizer moments, EMA copies, counters) are ignored when they use
    a known prefix; a model parameter that is missing or has another shape raises ``CheckpointError``.
    Returns the list of dropped head parameters.
    """
    own = {p.name: p for p in model.get_parameters()}
    weights = {k: v for k, v in params.items() if k in own}
    missing = [k for k in own if k not in weights]
    dropped_head = []
    bad_shape = []
    for key, value in list(weights.items()):
        if tuple(value.shape) != tuple(own[key].shape):
            if allow_head_mismatch and key.startswith(HEAD_PREFIXES):
                dropped_head.append(key)
                del weights[key]
            else:
                bad_shape.append(f"{key} {tuple(value.shape)} vs model {tuple(own[key].shape)}")
    if bad_shape:
        raise CheckpointError(f"{source}: shape mismatch for {_short(bad_shape)}")
    head_replaced = allow_head_mismatch and bool(dropped_head)
    missing_non_head = [k for k in missing if not (head_replaced and k.startswith(HEAD_PREFIXES))]
    if strict and missing_non_head:
        raise CheckpointError(f"{source}: missing weights for {_short(missing_non_head)}")
    ms.load_param_into_net(model, {k: ms.Parameter(v, name=k) if not isinstance(v, ms.Parameter) else v
                                   for k, v in weights.items()})
    return dropped_head


def load_pretrained(model, path):
    """Load a ``.ckpt`` file into ``model`` (strict, head may be re-shaped)."""
    params = read_checkpoint(path)
    # Training checkpoints may prefix weights (e.g. "network."); accept a unique prefix.
    own = {p.name for p in model.get_parameters()}
    if not own & set(params):
        for prefix in ("network.", "_backbone.", "model."):
            stripped = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
            if own & set(stripped):
                params = stripped
                break
    # A training checkpoint with EMA weights ("ema.<name>") is used through them, as eval.py does.
    ema = {k[len("ema."):]: v for k, v in params.items() if k.startswith("ema.")}
    if ema and own <= set(ema):
        params = ema
    return load_weights(model, params, source=path)


def checkpoint_metadata(path):
    """Non-tensor entries of a checkpoint (epoch, step, config text, class names ...).

    Class names are stored as a JSON list under ``class_names``; they are decoded here.
    """
    import json

    meta = {}
    for key, value in read_checkpoint(path).items():
        if isinstance(value, (str, int, float, bool)):
            meta[key] = value
    if isinstance(meta.get("class_names"), str):
        try:
            meta["class_names"] = json.loads(meta["class_names"])
        except ValueError:
            meta["class_names"] = None
    return meta
