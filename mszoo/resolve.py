"""Where a run's model and eval preprocessing come from, in one place.

For every key, the first of these that has a value wins:

1. the command line or the ``--config`` YAML (what the user said);
2. the model record of the checkpoint or exported model being used (``mszoo/models/record.py``);
3. the variant's default cfg (``image_size``, ``crop_pct``, ``interpolation``, ``mean``, ``std``), as timm's
   ``resolve_data_config`` does;
4. the defaults of the key table (``mszoo/config/keys.py``).

A value the user gave that contradicts the weights (another ``arch``, ``num_classes``, ``in_chans`` or
``model_kwargs`` entry) is a ``ConfigError`` naming both values, never a model with a random part.
Used by the trainer, the evaluator and the deploy scripts; changes only the ``cfg`` it is given.
"""
from mszoo.config import ConfigError, apply_mapping, source_of

DATA_KEYS = ("image_size", "crop_pct", "interpolation", "mean", "std")


def is_explicit(cfg, key):
    """True when ``key`` was set by the command line or a YAML file (or taken from a saved run config)."""
    return source_of(cfg, key) != "default"


def _set(cfg, key, value, source):
    apply_mapping(cfg, {key: value}, source, cfg.notes)


def _contradiction(cfg, key, value, source, theirs):
    return ConfigError(f"{key}: {value!r} (from {source_of(cfg, key)}) contradicts {source}, which holds {theirs}; "
                       f"drop the {key} setting or use the matching checkpoint")


def apply_record(cfg, record, source, take_num_classes=True):
    """Complete ``cfg`` from a model ``record`` (module docstring); returns the record's class names.

    ``take_num_classes=False`` (fine-tuning) leaves ``num_classes`` to the training data: the head may be
    replaced, the rest of the model may not.
    """
    from mszoo.models import resolve_name

    arch = resolve_name(record["arch"])
    if is_explicit(cfg, "arch") and resolve_name(cfg.arch) != arch:
        raise _contradiction(cfg, "arch", cfg.arch, source, f"a {arch} model")
    _set(cfg, "arch", arch, source)
    keys = ("num_classes", "in_chans") if take_num_classes else ("in_chans",)
    for key in keys:
        if is_explicit(cfg, key) and cfg[key] != record[key]:
            raise _contradiction(cfg, key, cfg[key], source, f"{key} {record[key]}")
        _set(cfg, key, record[key], source)
    _merge_model_kwargs(cfg, record["model_kwargs"], source)
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


def _merge_model_kwargs(cfg, saved, source):
    from mszoo.models.record import plain

    given = dict(cfg.model_kwargs or {}) if is_explicit(cfg, "model_kwargs") else {}
    for key, value in given.items():
        if key in saved and plain(value) != plain(saved[key]):
            raise ConfigError(f"model_kwargs: {key}={plain(value)!r} (from {source_of(cfg, 'model_kwargs')}) "
                              f"contradicts {source}, which was trained with {key}={saved[key]!r}")
    where = f"{source} + {source_of(cfg, 'model_kwargs')}" if given else source
    _set(cfg, "model_kwargs", dict(saved, **given), where)


def apply_head_classes(cfg, head_classes, source):
    """For a checkpoint without a record: ``num_classes`` from its classifier's shape, or a contradiction."""
    if head_classes is None:
        return
    if not is_explicit(cfg, "num_classes"):
        _set(cfg, "num_classes", head_classes, f"{source} (classifier shape)")
    elif cfg.num_classes != head_classes:
        raise _contradiction(cfg, "num_classes", cfg.num_classes, source, f"a {head_classes}-class classifier")


def fill_preprocessing(cfg):
    """Fill the eval preprocessing keys nobody set from the variant's default cfg (timm's rule)."""
    from mszoo.models import resolve_data_config as model_data_config

    defaults = model_data_config(cfg.arch)
    for key in DATA_KEYS:
        if cfg[key] is None or not is_explicit(cfg, key):
            _set(cfg, key, defaults[key], f"{cfg.arch} default cfg")
    return cfg


def apply_seed_arch(cfg, checkpoint):
    """A checkpoint of a seed's own code (``checkpoint.seed``): ``arch`` becomes the variant of that code's
    architecture, from the seed's model name (the seed YAML's ``arch: tnt_s_patch16_224``) or unset; said in one
    line. Another model named is a ``ConfigError``."""
    from mszoo.logger import get_logger

    seed = checkpoint.seed
    given = cfg.arch if is_explicit(cfg, "arch") else None
    variant = seed.variant_for(given)
    if variant is None:
        raise _contradiction(cfg, "arch", cfg.arch, checkpoint.path, f"a {seed.variant_for(None)} model")
    _set(cfg, "arch", variant, f"{checkpoint.path} (parameter names)")
    published = f" {given}" if given and given != variant else ""
    get_logger().info(f"{checkpoint.path}: a checkpoint of {seed.source} (recognised by its parameter names): "
                      f"running {variant}, that code's architecture, not the published model{published}")


def resolve_from_checkpoint(cfg, checkpoint, take_num_classes=True):
    """``apply_record`` (or, for an old/foreign checkpoint, the classifier shape; for a seed code's checkpoint,
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


def load_eval_model(cfg, checkpoint):
    """The eval-mode model of ``cfg`` with ``checkpoint``'s weights (EMA when complete), by the one loading
    rule and never re-headed. Call ``resolve_from_checkpoint`` first. Returns ``(model, which weights)``."""
    from mszoo.models.loading import CheckpointError, load_pretrained

    model = build_model(cfg, training=False)
    try:
        _, which = load_pretrained(model, checkpoint)
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
