"""Validation across keys and against the file system, for what a script is about to do; notes on keys whose
value has no effect in the resolved configuration."""
import os

from mszoo.constants import names_published_weights

from .keys import Config, ConfigError


def keep_bn_fp32_note(cfg):
    """A note when ``keep_bn_fp32`` was set but the AMP level makes it meaningless (O0, O1), else None."""
    source = source_of(cfg, "keep_bn_fp32")
    if source == "default" or cfg.amp_level not in ("O0", "O1"):
        return None
    why = ("nothing is cast to float16" if cfg.amp_level == "O0" else
           "O1 casts only MindSpore's white list (Dense, Conv, MatMul ...) to float16, never the norm layers")
    return (f"keep_bn_fp32: {str(cfg.keep_bn_fp32).lower()} has no effect at amp_level {cfg.amp_level}: {why}, so "
            f"they stay float32 either way; it matters at O2 and O3 (from {source})")


def source_of(cfg, name):
    """Where key ``name`` of ``cfg`` came from (``Config.source_of``; ``"default"`` for a plain mapping)."""
    return cfg.source_of(name) if isinstance(cfg, Config) else "default"


def validate(cfg, need_data=False, need_train_data=False):
    """Cross-key and file-system checks that depend on what the script is about to do."""
    def err(name, message):
        raise ConfigError(f"{name}: {message} (from {source_of(cfg, name)})")

    _check_weight_files(cfg, err)
    _check_optimizer(cfg, err)
    _check_normalization(cfg, err)
    _check_schedule_and_batch(cfg, err)
    if need_data and cfg.dataset == "imagefolder":
        _check_data_dirs(cfg, err, need_train_data)


def _check_weight_files(cfg, err):
    """``pretrained`` and ``resume`` name existing files (``pretrained`` may also name published weights)."""
    for name in ("pretrained", "resume"):
        path = cfg[name]
        if path and not (name == "pretrained" and names_published_weights(path)) and not os.path.exists(path):
            err(name, f"not found: {path}")


def _check_optimizer(cfg, err):
    """``min_lr`` does not exceed ``base_lr``; ``beta`` is two values in [0, 1)."""
    if cfg.min_lr > cfg.base_lr:
        err("min_lr", f"{cfg.min_lr} is larger than base_lr {cfg.base_lr}")
    if len(cfg.beta) != 2 or not all(0.0 <= b < 1.0 for b in cfg.beta):
        err("beta", f"needs two values in [0, 1), got {cfg.beta}")


def _check_normalization(cfg, err):
    """``mean`` and ``std`` have one value per input channel; ``std`` values are positive."""
    for name in ("mean", "std"):
        if cfg[name] is not None and len(cfg[name]) != cfg.in_chans:
            err(name, f"needs {cfg.in_chans} values, got {cfg[name]}")
    if cfg.std is not None and any(s <= 0 for s in cfg.std):
        err("std", f"values must be > 0, got {cfg.std}")


def _check_schedule_and_batch(cfg, err):
    """Warmup plus cooldown fit in the epochs; mixup/cutmix get an even batch size."""
    if cfg.warmup_length + cfg.cooldown_epochs > cfg.epochs and cfg.epochs > 1:
        err("warmup_length", f"warmup ({cfg.warmup_length}) + cooldown ({cfg.cooldown_epochs}) epochs exceed "
                             f"epochs ({cfg.epochs})")
    if (cfg.mixup > 0 or cfg.cutmix > 0) and cfg.mixup_prob > 0 and cfg.batch_size % 2:
        err("batch_size", f"mixup/cutmix need an even batch size, got {cfg.batch_size}")


def _check_data_dirs(cfg, err, need_train):
    if cfg.data_url is None and (cfg.val_dir is None or (need_train and cfg.train_dir is None)):
        err("data_url", "no dataset given: set data_url (with train/ and val/) or train_dir/val_dir, "
                        "or use dataset: digits")
    if cfg.data_url is not None and not os.path.isdir(cfg.data_url):
        err("data_url", f"directory not found: {cfg.data_url}")
    from mszoo.data.dataset import split_path  # the one rule for where a split's folder is

    splits = (("train_dir", "train"), ("val_dir", "val")) if need_train else (("val_dir", "val"),)
    for name, sub in splits:
        path = split_path(cfg.data_url, cfg[name], sub)
        if path is not None and not os.path.isdir(path):
            err(name if cfg[name] else "data_url", f"directory not found: {path}")
