"""Model registry: ``register_model``, ``create_model``, ``list_models`` and the model-zoo readmes' aliases.

Each variant is a small function in its family's file, decorated with ``@register_model``; its
keyword arguments (``img_size``, ``embed_dims``, ``depths`` ...) can be overridden through
``create_model(name, **kw)`` so tiny test models run the same code as the published ones.
"""
import difflib
import fnmatch
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:
    from mindspore import nn

from mszoo.constants import DEFAULT_CROP_PCT, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

_model_entrypoints = {}
_model_default_cfgs = {}
_checkpoint_filters = {}

# The model-zoo readmes' model names, mapped to the timm-style canonical names.
MODEL_ALIASES = {
    "pcpvt_small_v0": "twins_pcpvt_small",
    "pcpvt_base_v0": "twins_pcpvt_base",
    "pcpvt_large_v0": "twins_pcpvt_large",
    "pcpvt_small": "twins_pcpvt_small",
    "pcpvt_base": "twins_pcpvt_base",
    "pcpvt_large": "twins_pcpvt_large",
    "alt_gvt_small": "twins_svt_small",
    "alt_gvt_base": "twins_svt_base",
    "alt_gvt_large": "twins_svt_large",
    "T2t_vit_7": "t2t_vit_7",
    "T2t_vit_10": "t2t_vit_10",
    "T2t_vit_12": "t2t_vit_12",
    "T2t_vit_14": "t2t_vit_14",
    "T2t_vit_19": "t2t_vit_19",
    "T2t_vit_24": "t2t_vit_24",
    "T2t_vit_t_14": "t2t_vit_t_14",
    "T2t_vit_t_19": "t2t_vit_t_19",
    "T2t_vit_t_24": "t2t_vit_t_24",
}


# The variants that are the model-zoo readmes' own architectures (for checkpoints trained with their
# code), not published models: no published weights, not in timm (mszoo/models/seeds.py).
SEED_CODE_VARIANTS = "*_mindspore_seed"


def make_cfg(input_size=(3, 224, 224), crop_pct=0.9, interpolation="bicubic", mean=IMAGENET_DEFAULT_MEAN,
             std=IMAGENET_DEFAULT_STD, num_classes=1000, **kwargs):
    """The default (eval preprocessing) configuration carried by every variant, as timm's."""
    cfg = dict(input_size=tuple(input_size), crop_pct=crop_pct, interpolation=interpolation,
               mean=tuple(mean), std=tuple(std), num_classes=num_classes)
    cfg.update(kwargs)
    return cfg


def register_model(fn=None, *, default_cfg=None, checkpoint_filter=None):
    """Decorator registering a variant function under its own name (``@register_model``), with its default cfg
    and its family's ``checkpoint_filter(state_dict, model) -> state_dict`` (PyTorch names and shapes ->
    ours; the converter and ``create_model(pretrained=...)`` find it here, see ``checkpoint_filter``)."""

    def wrap(func):
        name = func.__name__
        if name in _model_entrypoints:
            raise ValueError(f"model '{name}' is registered twice")
        _model_entrypoints[name] = func
        _model_default_cfgs[name] = dict(default_cfg or make_cfg())
        if checkpoint_filter is not None:
            _checkpoint_filters[name] = checkpoint_filter
        return func

    return wrap(fn) if fn is not None else wrap


def _ensure_families_loaded():
    # Importing the package registers every family (see mszoo/models/__init__.py).
    import mszoo.models  # noqa: F401


def resolve_name(name: str) -> str:
    """Canonical model name for ``name`` (aliases resolved), or ValueError listing close matches."""
    _ensure_families_loaded()
    name = MODEL_ALIASES.get(name, name)
    if name not in _model_entrypoints:
        known = sorted(_model_entrypoints) + sorted(MODEL_ALIASES)
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model '{name}'{hint} (see list_models())")
    return name


def list_models(pattern: Union[str, Iterable[str]] = "*", pretrained: bool = False,
                exclude_filters: Union[str, Iterable[str]] = ()) -> list[str]:
    """Sorted canonical model names matching an fnmatch ``pattern`` (or a list of patterns) and none of
    ``exclude_filters`` (as timm's; e.g. ``SEED_CODE_VARIANTS``); with ``pretrained=True`` only those whose cfg
    names published weights (``create_model(name, pretrained=True)``)."""
    _ensure_families_loaded()
    names = set()
    for pat in _patterns(pattern):
        names.update(fnmatch.filter(_model_entrypoints, pat))
    for pat in _patterns(exclude_filters):
        names.difference_update(fnmatch.filter(names, pat))
    if pretrained:
        names = {n for n in names if _model_default_cfgs[n].get("hf_hub_id") or _model_default_cfgs[n].get("url")}
    return sorted(names)


def _patterns(patterns):
    return [patterns] if isinstance(patterns, str) else list(patterns)


def is_model(name: str) -> bool:
    _ensure_families_loaded()
    return MODEL_ALIASES.get(name, name) in _model_entrypoints


def get_default_cfg(name: str) -> dict[str, Any]:
    """A copy of the variant's default cfg (input size, crop_pct, interpolation, mean, std)."""
    return dict(_model_default_cfgs[resolve_name(name)])


def checkpoint_filter(name: str):
    """The checkpoint filter variant ``name`` was registered with (``register_model(checkpoint_filter=...)``)."""
    canonical = resolve_name(name)
    if canonical not in _checkpoint_filters:
        raise ValueError(f"{canonical} was registered without a checkpoint filter: its PyTorch weights cannot be "
                         "mapped (register_model(checkpoint_filter=...))")
    return _checkpoint_filters[canonical]


def resolve_data_config(name: str, overrides: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """The eval preprocessing of variant ``name``, as timm's ``resolve_data_config``: ``image_size``,
    ``crop_pct``, ``interpolation``, ``mean`` and ``std`` from its default cfg, each replaced by
    ``overrides[key]`` when that is not None."""
    cfg = get_default_cfg(name)
    data = dict(image_size=cfg["input_size"][-1], crop_pct=cfg.get("crop_pct", DEFAULT_CROP_PCT),
                interpolation=cfg.get("interpolation", "bicubic"), mean=list(cfg["mean"]), std=list(cfg["std"]))
    for key, value in (overrides or {}).items():
        if key in data and value is not None:
            data[key] = list(value) if key in ("mean", "std") else value
    return data


def create_model(name: str, num_classes: Optional[int] = None, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 pretrained: Union[None, bool, str, "os.PathLike[str]"] = None, **kwargs: Any) -> "nn.Cell":
    """Build a registered model: ``(N, 3, H, W)`` float32 -> ``(N, num_classes)`` logits.

    ``pretrained``: ``True``/``"timm"`` for the variant's published weights, a Hub id ``"hf-hub:ORG/REPO"``, a
    URL, a PyTorch file (fetched and converted once, mszoo/models/hub.py) or a MindSpore ``.ckpt``; see
    ``builder.build_model_with_cfg`` for how it is loaded. ``num_classes`` defaults to the checkpoint's, else 1000.
    ``features_only=True`` (with ``out_indices``) returns a backbone: a list of ``(N, C, H, W)`` maps and its
    ``feature_info`` (mszoo/models/layers/features.py), as timm's.
    """
    canonical = resolve_name(name)
    return _model_entrypoints[canonical](num_classes=num_classes, drop_rate=drop_rate,
                                         drop_path_rate=drop_path_rate, pretrained=pretrained, **kwargs)


def create_model_from_config(cfg, training=False):
    """``create_model`` from a config mapping (keys ``arch, num_classes, image_size, in_chans, drop_rate,
    drop_path_rate, model_kwargs``), without weights (load them with ``loading.load_pretrained``).

    Dropout and drop path are only built for training; evaluation/deployment models get 0 for both.
    ``grad_checkpointing`` (training only) recomputes the blocks in the backward pass.
    """
    kwargs = dict(img_size=cfg["image_size"], in_chans=cfg.get("in_chans", 3))
    kwargs.update(cfg.get("model_kwargs") or {})
    model = create_model(cfg["arch"], num_classes=cfg["num_classes"],
                         drop_rate=cfg.get("drop_rate", 0.0) if training else 0.0,
                         drop_path_rate=cfg.get("drop_path_rate", 0.0) if training else 0.0, **kwargs)
    if training and cfg.get("grad_checkpointing", False):
        model.set_grad_checkpointing(True)
    return model
