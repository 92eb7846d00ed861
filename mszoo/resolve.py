"""Where a run's model and eval preprocessing come from, in one place.

For every key, the first of these that has a value wins:

1. the command line or the ``--config`` YAML (what the user said);
2. the model record of the checkpoint or exported model being used (``mszoo/models/record.py``);
3. the variant's default cfg (``image_size``, ``crop_pct``, ``interpolation``, ``mean``, ``std``), as timm's
   ``resolve_data_config`` does;
4. the defaults of the key table (``mszoo/config/keys.py``).

The model keys go through the one merge of ``create_model(pretrained=...)`` (mszoo/models/pretrained.py): a
value the user gave that contradicts the weights (another ``arch``, ``num_classes``, ``in_chans`` or
``model_kwargs`` entry) is a ``ConfigError`` naming both values, never a model with a random part; the weights
then load by the one load (``load_pretrained_into``).
Used by the trainer, the evaluator and the deploy scripts; changes only the ``cfg`` it is given.
"""
from mszoo.config import ConfigError, apply_mapping, source_of

DATA_KEYS = ("image_size", "crop_pct", "interpolation", "mean", "std")


def is_explicit(cfg, key):
    """True when ``key`` was set by the command line or a YAML file (or taken from a saved run config)."""
    return source_of(cfg, key) != "default"


def _set(cfg, key, value, source):
    apply_mapping(cfg, {key: value}, source, cfg.notes)


def _origin(cfg):
    """Where an explicit model argument came from, for the one merge's messages (``from command line`` ...)."""
    def origin(key):
        return f"from {source_of(cfg, key if key in ('arch', 'num_classes', 'in_chans') else 'model_kwargs')}"
    return origin


def _merging(merge, *args, **kwargs):
    """The one merge (mszoo/models/pretrained.py); its contradiction is the user's: a ``ConfigError``."""
    from mszoo.models.pretrained import ArgumentConflict

    try:
        return merge(*args, **kwargs)
    except ArgumentConflict as exc:
        raise ConfigError(str(exc)) from None


def _given_arch(cfg):
    return cfg.arch if is_explicit(cfg, "arch") else None


def apply_record(cfg, record, source, take_num_classes=True):
    """Complete ``cfg`` from a model ``record`` by the one merge (module docstring); returns the record's class
    names.

    ``take_num_classes=False`` (fine-tuning) leaves ``num_classes`` to the training data: the head may be
    replaced, the rest of the model may not.
    """
    from mszoo.models.pretrained import MODEL_ARG_KEYS, merge_arch, merge_args

    _set(cfg, "arch", _merging(merge_arch, _given_arch(cfg), source, _origin(cfg)("arch"), record=record), source)
    given = dict(cfg.model_kwargs or {}) if is_explicit(cfg, "model_kwargs") else {}
    keys = ("num_classes", "in_chans") if take_num_classes else ("in_chans",)
    given.update({key: cfg[key] for key in keys if is_explicit(cfg, key)})
    args = _merging(merge_args, given, source, _origin(cfg), record=record, fine_tune=not take_num_classes)
    for key in keys:
        _set(cfg, key, args[key], source)
    kwargs = {k: v for k, v in args.items() if k not in MODEL_ARG_KEYS}
    where = f"{source} + {source_of(cfg, 'model_kwargs')}" if is_explicit(cfg, "model_kwargs") and cfg.model_kwargs \
        else source
    _set(cfg, "model_kwargs", kwargs, where)
    for key in DATA_KEYS:
        if not is_explicit(cfg, key) and record.get(key) is not None:
            _set(cfg, key, record[key], source)
    return record.get("class_names")


def apply_checked_record(cfg, record, source):
    """Complete ``cfg`` from a record that was already resolved against every value ``cfg`` sets explicitly (an IR
    cache entry is keyed by them, mszoo/deploy/ir_cache.py): its values are taken as they are, with no model
    registry (and so no MindSpore) needed. Returns its class names."""
    for key in ("arch", "num_classes", "in_chans", "model_kwargs") + DATA_KEYS:
        _set(cfg, key, record[key], source)
    return record.get("class_names")


def apply_head_classes(cfg, head_classes, source):
    """For a checkpoint without a record: ``num_classes`` from its classifier's shape, or a contradiction."""
    from mszoo.models.pretrained import merge_args

    given = {"num_classes": cfg.num_classes} if is_explicit(cfg, "num_classes") else {}
    args = _merging(merge_args, given, source, _origin(cfg), head_classes=head_classes)
    if head_classes is not None and not given:
        _set(cfg, "num_classes", args["num_classes"], f"{source} (classifier shape)")


def fill_preprocessing(cfg):
    """Fill the eval preprocessing keys nobody set from the variant's default cfg (timm's rule)."""
    from mszoo.models import resolve_data_config as model_data_config

    defaults = model_data_config(cfg.arch)
    for key in DATA_KEYS:
        if cfg[key] is None or not is_explicit(cfg, key):
            _set(cfg, key, defaults[key], f"{cfg.arch} default cfg")
    return cfg


def apply_seed_arch(cfg, checkpoint):
    """A checkpoint of a model-zoo readme's own code (``checkpoint.seed``): ``arch`` becomes the variant of that code's
    architecture, from the readme's model name (its YAML's ``arch: tnt_s_patch16_224``) or unset; said in one
    line. Another model named is a ``ConfigError`` (the one merge's ``merge_arch``)."""
    from mszoo.logger import get_logger
    from mszoo.models.pretrained import merge_arch

    given = _given_arch(cfg)
    variant = _merging(merge_arch, given, checkpoint.path, _origin(cfg)("arch"), seed=checkpoint.seed)
    _set(cfg, "arch", variant, f"{checkpoint.path} (parameter names)")
    published = f" {given}" if given and given != variant else ""
    get_logger().info(f"{checkpoint.path}: a checkpoint of {checkpoint.seed.source} (recognised by its parameter "
                      f"names): running {variant}, that code's architecture, not the published model{published}")


def resolve_from_checkpoint(cfg, checkpoint, take_num_classes=True):
    """``apply_record`` (or, for an old/foreign checkpoint, the classifier shape; for a model-zoo code's checkpoint,
    ``apply_seed_arch`` first) then ``fill_preprocessing``.

    ``checkpoint`` is a ``mszoo.models.loading.CheckpointFile``; returns its class names (or None)."""
    if checkpoint.record is not None:
        apply_record(cfg, checkpoint.record, checkpoint.path, take_num_classes=take_num_classes)
    elif checkpoint.seed is not None:
        apply_seed_arch(cfg, checkpoint)
    if checkpoint.record is None and take_num_classes:
        apply_head_classes(cfg, checkpoint.head_classes(), checkpoint.path)
    fill_preprocessing(cfg)
    return checkpoint.class_names


def record_of(cfg, class_names=None):
    """The model record (``mszoo/models/record.py``) of the model ``cfg`` describes, for a checkpoint or sidecar.
    Preprocessing keys ``cfg`` leaves unset are the variant's defaults (as ``fill_preprocessing``)."""
    from mszoo.models import resolve_data_config as model_data_config
    from mszoo.models import resolve_name
    from mszoo.models.record import make_record

    pre = model_data_config(cfg.arch, {key: cfg[key] for key in DATA_KEYS})
    return make_record(resolve_name(cfg.arch), cfg.num_classes, pre["image_size"], pre["crop_pct"],
                       pre["interpolation"], pre["mean"], pre["std"], in_chans=cfg.in_chans,
                       model_kwargs=cfg.model_kwargs, class_names=class_names)


def build_model(cfg, training=True):
    """The model ``cfg`` describes (``arch``, classes, drop rates, ``image_size``, ``model_kwargs``), no weights.

    Dropout and drop path only in training; a ``model_kwargs`` entry the model does not take is a ConfigError."""
    from mszoo.models import create_model_from_config

    try:
        return create_model_from_config(cfg, training=training)
    except TypeError as exc:
        raise ConfigError(f"model_kwargs: {exc} (from {source_of(cfg, 'model_kwargs')})") from None


def load_pretrained_into(model, cfg, checkpoint, fine_tune=False):
    """The one load (mszoo/models/pretrained.py) of ``checkpoint`` into the model ``cfg`` describes: EMA weights
    when complete; an ``image_size`` the user set resamples the position tables by the variant's checkpoint
    filter, as ``create_model(..., img_size=...)`` does. ``fine_tune`` (``train.py --pretrained``) may replace
    the head. Returns ``(replaced, which weights)``."""
    from mszoo.models.pretrained import load_into

    return load_into(model, cfg.arch, checkpoint, fine_tune=fine_tune, resized=is_explicit(cfg, "image_size"))


def load_eval_model(cfg, checkpoint):
    """The eval-mode model of ``cfg`` with ``checkpoint``'s weights (EMA when complete), by the one load and never
    re-headed. Call ``resolve_from_checkpoint`` first. Returns ``(model, which weights)``."""
    from mszoo.models.loading import CheckpointError

    model = build_model(cfg, training=False)
    try:
        _, which = load_pretrained_into(model, cfg, checkpoint)
    except CheckpointError as exc:
        if checkpoint.record is None:
            raise CheckpointError(f"{exc} (it carries no model record: set the arch, model_kwargs and image_size "
                                  "it was trained with)") from None
        raise
    model.set_train(False)
    return model, which


def pretrained_file(cfg):
    """``cfg.pretrained`` as a local MindSpore ``.ckpt``: published weights (``timm``), Hub ids, URLs and
    PyTorch files are fetched and converted once (mszoo/models/hub.py). Their model is ``arch`` when set, else
    the one a Hub id names (``hf-hub:timm/twins_svt_small.in1k``)."""
    from mszoo.constants import names_published_weights
    from mszoo.models import is_model, resolve_name
    from mszoo.models.hub import TORCH_SUFFIXES, pretrained_checkpoint

    spec = cfg.pretrained
    if not (names_published_weights(spec) or spec.endswith(TORCH_SUFFIXES)):
        return spec
    if not is_explicit(cfg, "arch"):
        guess = spec.split("/")[-1].split("@")[0].split(".")[0] if spec.startswith("hf-hub:") else None
        if guess is None or not is_model(guess):
            raise ConfigError(f"arch: give the model that --pretrained {spec} holds (--arch NAME)")
        _set(cfg, "arch", guess, spec)
    return pretrained_checkpoint(resolve_name(cfg.arch), spec)


def eval_preprocessing(cfg):
    """The eval transform's settings of a resolved ``cfg`` (``transforms_imagenet_eval`` keyword arguments)."""
    return dict(image_size=cfg.image_size, crop_pct=cfg.crop_pct, interpolation=cfg.interpolation,
                mean=tuple(cfg.mean), std=tuple(cfg.std))


def dataset_root(cfg):
    """``(root, train_dir, val_dir)`` of the configured dataset (see ``mszoo.data.dataset_dirs``)."""
    from mszoo.data import dataset_dirs

    return dataset_dirs(cfg.dataset, cfg.data_url, cfg.train_dir, cfg.val_dir, cfg.output_dir)


def data_config(cfg, is_training, epoch=0, shard=(None, None)):
    """The :class:`mszoo.data.DataConfig` of a run's train or eval pipeline: the one translation of config keys
    into pipeline settings, used by training, eval.py and the exported-model evaluation alike. ``shard`` is
    ``(num_shards, shard_id)`` of a distributed run."""
    from mszoo.data import DataConfig

    num_shards, shard_id = shard
    common = dict(batch_size=cfg.batch_size, image_size=cfg.image_size, crop_pct=cfg.crop_pct, mean=tuple(cfg.mean),
                  std=tuple(cfg.std), num_classes=cfg.num_classes, num_parallel_workers=cfg.num_parallel_workers,
                  num_shards=num_shards, shard_id=shard_id, subset_seed=cfg.seed)
    if not is_training:
        return DataConfig(is_training=False, interpolation=cfg.interpolation, num_samples=cfg.val_num_samples,
                          **common)
    return DataConfig(is_training=True, interpolation=cfg.train_interpolation or cfg.interpolation,
                      min_crop=cfg.min_crop, hflip=cfg.hflip, color_jitter=cfg.color_jitter,
                      auto_augment=cfg.auto_augment, re_prob=cfg.re_prob, re_mode=cfg.re_mode, re_count=cfg.re_count,
                      mixup=cfg.mixup, cutmix=cfg.cutmix, mixup_prob=cfg.mixup_prob, switch_prob=cfg.switch_prob,
                      mixup_mode=cfg.mixup_mode, label_smoothing=cfg.label_smoothing,
                      mixup_off_epoch=cfg.mixup_off_epoch, start_epoch=epoch, num_samples=cfg.train_num_samples,
                      **common)
