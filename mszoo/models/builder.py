"""Building a registered variant: constructor arguments, default cfg and ``pretrained`` weights.

Every family's ``_create_<family>`` ends in ``build_model_with_cfg`` (timm's ``_builder.py``). Kept apart
from the registry so that the registry (names, default cfgs, ``create_model``) imports nothing that fetches
or converts weights: hub.py and convert.py use the registry, this module uses them.
"""
import logging
import os

from .hub import pretrained_checkpoint
from .layers.features import FeatureGetterNet
from .loading import CheckpointFile
from .pretrained import load_into, merge_checkpoint, seed_conflict
from .registry import _model_default_cfgs

LOGGER_NAME = "mszoo"  # mszoo.logger's logger (models import nothing from the rest of mszoo)


def build_model_with_cfg(model_cls, variant, pretrained=None, model_args=None, feature_cfg=None, **kwargs):
    """Build ``model_cls`` for a registered variant, attach its default cfg and load ``pretrained``.

    Every family's ``_create_<family>`` ends here, so ``pretrained`` means the same for all of them (see
    ``create_model``). Constructor arguments are the variant's ``model_args``, then what the checkpoint's
    model record (mszoo/models/record.py) says (``num_classes``, ``model_kwargs``, ``img_size``, ``in_chans``;
    without a record, ``num_classes`` from its classifier), then the ``kwargs`` given: the one merge and the one
    load of mszoo/models/pretrained.py, as the scripts and the converter use them. A given argument that
    contradicts the weights is ``ArgumentConflict``, except ``num_classes``: another one re-heads the model for
    fine-tuning (logged), as timm does; weights that do not fit otherwise raise ``CheckpointError`` naming the keys.

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
    rehead = checkpoint is not None and "num_classes" in given
    merged = given if checkpoint is None else _merge_pretrained(variant, checkpoint, given, rehead)
    args = dict(dict(model_args or {}), **merged)
    args.setdefault("num_classes", 1000)
    model = model_cls(**args)
    model.default_cfg = dict(_model_default_cfgs[variant], architecture=variant)
    if checkpoint is not None:
        replaced, which = load_into(model, variant, checkpoint, fine_tune=rehead, resized="img_size" in given)
        if replaced:
            logging.getLogger(LOGGER_NAME).info(
                f"{variant}: loaded {which} of {checkpoint.path} with a new {args['num_classes']}-class head "
                f"for fine-tuning (re-initialised: {', '.join(replaced)})")
    if features_only:
        return FeatureGetterNet(model, out_indices)
    return model


def _library_hint(key):
    if key == "arch":
        return "create the model it holds or use the matching checkpoint"
    return f"drop the {key} argument or use the matching checkpoint"


def _merge_pretrained(variant, checkpoint, given, rehead):
    """The one merge (mszoo/models/pretrained.py) for ``create_model``: the checkpoint's constructor arguments, then
    the caller's; a contradiction, or weights of another architecture, is ``ArgumentConflict``. A ``num_classes``
    given (``rehead``) is fine-tuning, as in timm: a new head of that size, said in the log."""
    arch, args = merge_checkpoint(checkpoint, variant, given, lambda key: "given to create_model", fine_tune=rehead,
                                  hint=_library_hint)
    if arch != variant:  # a model-zoo code's checkpoint named by the readme's model name: that code's variant holds it
        raise seed_conflict(variant, "given to create_model", checkpoint.path, checkpoint.seed)
    return args


def _open_pretrained(variant, pretrained):
    """The checkpoint for ``pretrained``: a local ``.ckpt``, or published/PyTorch weights fetched and converted
    once (mszoo/models/hub.py)."""
    if pretrained is not True and not isinstance(pretrained, (str, os.PathLike)):
        raise ValueError(f"{variant}: pretrained must be True, 'timm', a Hub id (hf-hub:ORG/REPO), a URL or a "
                         f"file path, not {pretrained!r}")
    spec = pretrained if pretrained is True else os.fspath(pretrained)
    return CheckpointFile(pretrained_checkpoint(variant, spec))
