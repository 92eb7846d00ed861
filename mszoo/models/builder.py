"""Building a registered variant: constructor arguments, default cfg and ``pretrained`` weights.

Every family's ``_create_<family>`` ends in ``build_model_with_cfg`` (timm's ``_builder.py``). Kept apart
from the registry so that the registry (names, default cfgs, ``create_model``) imports nothing that fetches
or converts weights: hub.py and convert.py use the registry, this module uses them.
"""
import logging
import os

from .hub import pretrained_checkpoint
from .layers.features import FeatureGetterNet
from .loading import CheckpointError, CheckpointFile, load_pretrained
from .registry import _model_default_cfgs, model_family_module, resolve_name

LOGGER_NAME = "mszoo"  # mszoo.logger's logger (models import nothing from the rest of src)


def build_model_with_cfg(model_cls, variant, pretrained=None, model_args=None, feature_cfg=None, **kwargs):
    """Build ``model_cls`` for a registered variant, attach its default cfg and load ``pretrained``.

    Every family's ``_create_<family>`` ends here, so ``pretrained`` means the same for all of them (see
    ``create_model``). Constructor arguments are the variant's ``model_args``, then what the checkpoint's
    model record (mszoo/models/record.py) says (``num_classes``, ``model_kwargs``, ``img_size``, ``in_chans``),
    then the ``kwargs`` given. Weights load by the one rule (mszoo/models/loading.py): a ``num_classes`` given
    here that differs from the checkpoint's re-heads the model for fine-tuning (logged); anything else that
    does not fit raises ``CheckpointError`` naming the keys.

    ``features_only=True`` (with ``out_indices``, default ``feature_cfg["out_indices"]``, the family's as in timm)
    returns the loaded model wrapped as a backbone (``layers/features.py: FeatureGetterNet``): a list of maps,
    ``feature_info``, and no classifier (pruned after loading, so a checkpoint's head is not an error).
    """
    features_only = kwargs.pop("features_only", False)
    if not features_only and "out_indices" in kwargs:
        raise ValueError(f"{variant}: out_indices is used with features_only=True only")
    out_indices = kwargs.pop("out_indices", (feature_cfg or {}).get("out_indices"))
    if features_only and feature_cfg is None:
        raise ValueError(f"{variant}: features_only is not supported")
    given = {k: v for k, v in kwargs.items() if v is not None}
    checkpoint = None if pretrained is None or pretrained is False else _open_pretrained(variant, pretrained)
    saved = _checkpoint_args(variant, checkpoint) if checkpoint is not None else {}
    args = dict(dict(model_args or {}), **saved)
    args.update(given)
    args.setdefault("num_classes", 1000)
    model = model_cls(**args)
    model.default_cfg = dict(_model_default_cfgs[variant], architecture=variant)
    if checkpoint is not None:
        rehead = "num_classes" in given and checkpoint.head_classes() != given["num_classes"]
        adapt = _size_adapter(variant, model, given)
        replaced, which = load_pretrained(model, checkpoint, allow_rehead=rehead, adapt=adapt)
        if replaced:
            logging.getLogger(LOGGER_NAME).info(
                f"{variant}: loaded {which} of {checkpoint.path} with a new {args['num_classes']}-class head "
                f"for fine-tuning (re-initialised: {', '.join(replaced)})")
    if features_only:
        return FeatureGetterNet(model, out_indices)
    return model


def _size_adapter(variant, model, given):
    """When the caller builds the model at an ``img_size`` of its own: the family's ``checkpoint_filter_fn``, which
    resamples (TNT) or rebuilds (T2T-ViT) position tables sized for the checkpoint's (as timm does on load)."""
    if "img_size" not in given:
        return None
    family = model_family_module(variant)
    return lambda weights: family.checkpoint_filter_fn(weights, model)


def _open_pretrained(variant, pretrained):
    """The checkpoint for ``pretrained``: a local ``.ckpt``, or published/PyTorch weights fetched and converted
    once (mszoo/models/hub.py)."""
    if pretrained is not True and not isinstance(pretrained, (str, os.PathLike)):
        raise ValueError(f"{variant}: pretrained must be True, 'timm', a Hub id (hf-hub:ORG/REPO), a URL or a "
                         f"file path, not {pretrained!r}")
    spec = pretrained if pretrained is True else os.fspath(pretrained)
    return CheckpointFile(pretrained_checkpoint(variant, spec))


def _checkpoint_args(variant, checkpoint):
    """Constructor arguments a checkpoint fixes: from its record, or (no record) its classifier's size. A seed
    code's checkpoint (``checkpoint.seed``, mszoo/models/seeds.py) loads only into that code's variant."""
    record = checkpoint.record
    seed = checkpoint.seed
    if seed is not None and seed.variant_for(variant) != variant:
        raise CheckpointError(f"{checkpoint.path} was trained with {seed.source}, another architecture than "
                              f"{variant}: load it into {seed.variant_for(None)}")
    if record is None:
        classes = checkpoint.head_classes()
        return {} if classes is None else {"num_classes": classes}
    if resolve_name(record["arch"]) != variant:
        raise CheckpointError(f"{checkpoint.path} holds a {record['arch']} model, not {variant}")
    return dict(record["model_kwargs"], num_classes=record["num_classes"], img_size=record["image_size"],
                in_chans=record["in_chans"])
