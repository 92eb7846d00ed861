"""One route for pretrained weights: one merge of what the weights fix with what the caller gives, one load.

- ``merge_arch`` / ``merge_args`` (the merge): the model a checkpoint holds (its record's arch, or the variant of
  a model-zoo code's architecture) and the constructor arguments its weights fix (the record's ``model_kwargs``,
  ``num_classes``, ``in_chans`` and ``img_size``; without a record, ``num_classes`` from its classifier), then
  the arguments the caller gave. An explicit argument that agrees is fine; one that contradicts the weights is
  ``ArgumentConflict``: one line naming both values, never resolved silently. ``img_size`` never contradicts
  (the position tables are resampled on loading); fine-tuning (``fine_tune=True``) leaves ``num_classes`` free.
- ``load_into`` (the load): a MindSpore checkpoint (``loading.CheckpointFile``: EMA copy when complete) or a
  PyTorch state dict (``{name: ndarray}``) into the built model by the one rule (``loading.load_weights``:
  missing, unexpected and mis-shaped keys named), through the checkpoint filter the variant was registered
  with where names or sizes need mapping.

Used by ``create_model(pretrained=...)`` (builder.py), the scripts (mszoo/resolve.py: eval, infer, export,
``train.py --pretrained``) and the PyTorch converter (convert.py) alike.
"""
from collections.abc import Mapping

from .loading import CheckpointError, load_pretrained, load_weights
from .record import plain
from .registry import checkpoint_filter, resolve_name

# Constructor arguments a checkpoint fixes besides its ``model_kwargs`` entries.
MODEL_ARG_KEYS = ("num_classes", "in_chans", "img_size")


class ArgumentConflict(CheckpointError):
    """An explicit argument that contradicts the weights (the message names both values)."""


def _default_hint(key):
    return f"drop the {key} setting or use the matching checkpoint"


def conflict(key, value, origin, source, holds, hint=_default_hint):
    """The one line of a contradiction: ``KEY: VALUE (ORIGIN) contradicts SOURCE, which holds HOLDS; HINT``."""
    return ArgumentConflict(f"{key}: {value!r} ({origin}) contradicts {source}, which holds {holds}; {hint(key)}")


def merge_arch(given, source, origin, record=None, seed=None, hint=_default_hint):
    """The model the weights hold: the record's arch, or (a model-zoo code's checkpoint) the variant of that code's
    architecture for the readme's model name ``given``; ``given`` (None when nobody named a model) must agree."""
    if record is not None:
        arch = resolve_name(record["arch"])
        if given is not None and resolve_name(given) != arch:
            raise conflict("arch", given, origin, source, f"a {arch} model", hint)
        return arch
    if seed is not None:
        arch = seed.variant_for(given)
        if arch is None:
            raise seed_conflict(given, origin, source, seed)
        return arch
    return None if given is None else resolve_name(given)


def seed_conflict(given, origin, source, seed):
    """A model-zoo code's checkpoint asked to load into another model than that code's architecture."""
    variant = seed.variant_for(None)
    return ArgumentConflict(f"arch: {given!r} ({origin}) contradicts {source}, which holds a {variant} model (it was "
                            f"trained with {seed.source}, another architecture): load it into {variant}")


def fixed_args(record=None, head_classes=None):
    """The constructor arguments the weights fix: the record's, else ``num_classes`` from the classifier."""
    if record is not None:
        return dict(record["model_kwargs"], num_classes=record["num_classes"], in_chans=record["in_chans"],
                    img_size=record["image_size"])
    return {} if head_classes is None else {"num_classes": head_classes}


def merge_args(given, source, origin, record=None, head_classes=None, fine_tune=False, hint=_default_hint):
    """``fixed_args`` then ``given`` (explicit arguments, None values left out); a contradiction is
    ``ArgumentConflict``. ``origin(key)`` says where a given value came from. ``fine_tune``: ``num_classes`` is
    neither taken from the weights nor compared with them (a new head may be trained)."""
    fixed = fixed_args(record, head_classes)
    if fine_tune:
        fixed.pop("num_classes", None)
    given = {k: v for k, v in given.items() if v is not None}
    for key, value in given.items():
        if key == "img_size" or key not in fixed or plain(value) == plain(fixed[key]):
            continue
        if key == "num_classes" and record is None:
            raise conflict(key, value, origin(key), source, f"a {fixed[key]}-class classifier", hint)
        if key in MODEL_ARG_KEYS:
            raise conflict(key, value, origin(key), source, f"{key} {fixed[key]}", hint)
        raise ArgumentConflict(f"model_kwargs: {key}={plain(value)!r} ({origin(key)}) contradicts {source}, which "
                               f"holds {key}={plain(fixed[key])!r}; {hint(key)}")
    return dict(fixed, **given)


def merge_checkpoint(checkpoint, arch, given, origin, fine_tune=False, hint=_default_hint):
    """``(arch, constructor arguments)`` for a ``loading.CheckpointFile``: ``merge_arch`` and ``merge_args``."""
    record = checkpoint.record
    arch = merge_arch(arch, checkpoint.path, origin("arch"), record=record, seed=checkpoint.seed, hint=hint)
    head = checkpoint.head_classes() if record is None else None
    return arch, merge_args(given, checkpoint.path, origin, record=record, head_classes=head, fine_tune=fine_tune,
                            hint=hint)


def load_into(model, arch, weights, source=None, fine_tune=False, resized=False):
    """Load ``weights`` into ``model`` (variant ``arch``) by the one rule; returns ``(replaced, which)``.

    ``weights``: a ``loading.CheckpointFile`` (its EMA copy when complete; mapped by the variant's checkpoint
    filter only when the model was built at an ``img_size`` of the caller's, ``resized``, so that position
    tables are resampled or rebuilt) or a PyTorch state dict (always mapped by the filter; ``source`` names it).
    ``fine_tune`` lets a classifier of another size stay at its fresh init; ``replaced`` names it.
    """
    mapper = checkpoint_filter(arch)
    if isinstance(weights, Mapping):
        mapped = mapper(dict(weights), model)
        return load_weights(model, mapped, source=source or "checkpoint", allow_rehead=fine_tune,
                            ignore_prefixes=()), "weights"
    adapt = (lambda offered: mapper(offered, model)) if resized else None
    return load_pretrained(model, weights, allow_rehead=fine_tune, adapt=adapt)
