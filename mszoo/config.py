"""Configuration: documented defaults, then a YAML file, then command-line flags.

Every key lives once in ``KEYS`` with its default, type and one-line help. A YAML file overrides the
defaults and CLI flags override the YAML (``--base_lr 0.001`` and ``--base-lr 0.001`` both work;
booleans take ``true/false``). The seeds' spellings (``mix_up``, ``clip_global_norm_value`` ...) are
aliases. Anything wrong (unknown key, wrong type, impossible value, missing file) raises
``ConfigError`` with one line naming the key and where it came from; ``mszoo.cli`` turns that into a
clean exit with code 2.
"""
import argparse
import copy
import difflib
import os
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import yaml

from mszoo.constants import LR_SCHEDULERS, OPTIMIZERS, names_published_weights
from mszoo.recipes import SEED_RECIPES, close_recipes, recipe_path, seed_recipe

BOOL_TRUE = ("true", "yes", "on", "1")
BOOL_FALSE = ("false", "no", "off", "0")


class ConfigError(ValueError):
    """A user error in the configuration (message is one line naming key and source)."""


@dataclass(frozen=True)
class Key:
    name: str
    default: Any
    type: str  # int | float | str | bool | floats | ints | dict | path
    help: str
    group: str = "misc"
    choices: Optional[Tuple] = None
    min: Optional[float] = None  # inclusive lower bound
    max: Optional[float] = None  # inclusive upper bound
    positive: bool = False  # strictly > 0
    nullable: bool = False


def _k(group, name, default, type_, help_, **kw):
    return Key(name=name, default=default, type=type_, help=help_, group=group, **kw)


KEYS = (
    # model
    _k("model", "arch", "twins_pcpvt_small", "str", "model name (see list_models(); seed names are aliases)"),
    _k("model", "num_classes", 1000, "int", "number of classes of the classifier head", positive=True),
    _k("model", "image_size", 224, "int", "train/eval input size in pixels (default: the checkpoint's, else the "
       "model's default cfg)", positive=True),
    _k("model", "in_chans", 3, "int", "input channels", positive=True),
    _k("model", "drop_rate", 0.0, "float", "dropout rate before the head and in MLPs", min=0.0, max=0.99),
    _k("model", "drop_path_rate", 0.1, "float", "stochastic depth rate (linear over depth)", min=0.0, max=0.99),
    _k("model", "model_kwargs", {}, "dict", "extra create_model overrides, e.g. {embed_dims: [32, 64]}"),
    _k("model", "pretrained", None, "path", "weights to fine-tune from (train.py) or to evaluate, export or run: a "
       "MindSpore .ckpt (its model record gives arch, classes and preprocessing), timm (the arch's published "
       "weights), hf-hub:ORG/REPO, a URL or a .pth/.safetensors file (fetched and converted once)", nullable=True),
    # data
    _k("data", "dataset", "imagefolder", "str", "imagefolder (data_url/train, data_url/val) or digits (embedded)",
       choices=("imagefolder", "digits")),
    _k("data", "data_url", None, "path", "dataset root holding train/ and val/ class folders", nullable=True),
    _k("data", "train_dir", None, "path", "train folder (default: data_url/train)", nullable=True),
    _k("data", "val_dir", None, "path", "validation folder (default: data_url/val)", nullable=True),
    _k("data", "train_num_samples", None, "int", "use only this many train samples", nullable=True, positive=True),
    _k("data", "val_num_samples", None, "int", "use only this many val samples", nullable=True, positive=True),
    _k("data", "num_parallel_workers", 8, "int", "dataset engine workers per process", positive=True),
    _k("data", "interpolation", None, "str", "resize interpolation (default: the checkpoint's, else the model's "
       "default cfg)", nullable=True, choices=("bicubic", "bilinear", "nearest", "random")),
    _k("data", "train_interpolation", None, "str", "training crop interpolation (default: interpolation; random = "
       "bilinear or bicubic per image, timm's default)", nullable=True,
       choices=("bicubic", "bilinear", "nearest", "random")),
    _k("data", "crop_pct", None, "float", "eval: resize to image_size / crop_pct, then center crop (default: the "
       "checkpoint's, else the model's default cfg)", nullable=True, positive=True, max=1.0),
    _k("data", "min_crop", 0.08, "float", "train RandomResizedCrop minimum scale", positive=True, max=1.0),
    _k("data", "hflip", 0.5, "float", "horizontal flip probability", min=0.0, max=1.0),
    _k("data", "color_jitter", 0.4, "float", "color jitter strength when auto_augment is off", min=0.0),
    _k("data", "auto_augment", "rand-m9-mstd0.5-inc1", "str",
       "timm policy string (rand-m9-mstd0.5-inc1, original, v0, 3a, augmix-m3-w3); empty/none = off", nullable=True),
    _k("data", "re_prob", 0.25, "float", "random erasing probability", min=0.0, max=1.0),
    _k("data", "re_mode", "pixel", "str", "random erasing fill", choices=("const", "rand", "pixel")),
    _k("data", "re_count", 1, "int", "random erasing boxes per image", positive=True),
    _k("data", "mean", None, "floats", "normalisation mean (RGB, 0..1; default: the checkpoint's, else the model's "
       "default cfg)", nullable=True),
    _k("data", "std", None, "floats", "normalisation std (RGB, 0..1; default: the checkpoint's, else the model's "
       "default cfg)", nullable=True),
    # mixup / loss
    _k("mixup", "mixup", 0.8, "float", "mixup alpha (0 = off)", min=0.0),
    _k("mixup", "cutmix", 1.0, "float", "cutmix alpha (0 = off)", min=0.0),
    _k("mixup", "mixup_prob", 1.0, "float", "probability of applying mixup or cutmix to a batch", min=0.0, max=1.0),
    _k("mixup", "switch_prob", 0.5, "float", "probability of cutmix instead of mixup when both on", min=0.0, max=1.0),
    _k("mixup", "mixup_mode", "batch", "str", "mixup granularity", choices=("batch", "pair", "elem")),
    _k("mixup", "mixup_off_epoch", 0, "int", "turn mixup/cutmix off from this epoch (0 = never)", min=0),
    _k("mixup", "label_smoothing", 0.1, "float", "label smoothing", min=0.0, max=0.99),
    # optimizer
    _k("optim", "optimizer", "adamw", "str", "optimizer", choices=OPTIMIZERS),
    _k("optim", "base_lr", 5e-4, "float", "peak learning rate", positive=True),
    _k("optim", "min_lr", 1e-5, "float", "final learning rate", min=0.0),
    _k("optim", "warmup_lr", 1e-6, "float", "learning rate at the start of warmup", min=0.0),
    _k("optim", "warmup_length", 5, "int", "warmup epochs", min=0),
    _k("optim", "lr_scheduler", "cosine_lr", "str", "learning-rate schedule", choices=LR_SCHEDULERS),
    _k("optim", "lr_adjust", 30, "int", "step_lr: decay every this many epochs", positive=True),
    _k("optim", "lr_gamma", 0.1, "float", "step/multistep/exponential decay factor", positive=True),
    _k("optim", "lr_milestones", [30, 60, 90], "ints", "multistep_lr: epochs where lr is multiplied by lr_gamma"),
    _k("optim", "lr_power", 1.0, "float", "polynomial_lr power", positive=True),
    _k("optim", "cooldown_epochs", 10, "int", "epochs at min_lr after the schedule", min=0),
    _k("optim", "lr_scale_batch", 0, "int", "if > 0: lr *= global_batch / lr_scale_batch (linear scaling rule)",
       min=0),
    _k("optim", "beta", [0.9, 0.999], "floats", "Adam betas"),
    _k("optim", "eps", 1e-8, "float", "optimizer epsilon", positive=True),
    _k("optim", "weight_decay", 0.05, "float", "weight decay (not on norms, biases, tokens, pos embeds)", min=0.0),
    _k("optim", "momentum", 0.9, "float", "SGD momentum", min=0.0, max=1.0),
    _k("optim", "nesterov", False, "bool", "SGD Nesterov momentum"),
    # training
    _k("train", "epochs", 300, "int", "training epochs (cooldown included)", positive=True),
    _k("train", "batch_size", 128, "int", "per-device batch size", positive=True),
    _k("train", "accumulation_steps", 1, "int", "micro-batches per optimizer step", positive=True),
    _k("train", "amp_level", "O0", "str", "MindSpore AMP level", choices=("O0", "O1", "O2", "O3")),
    _k("train", "keep_bn_fp32", True, "bool", "keep norm layers in float32 under AMP O2/O3 (O0 and O1 never cast "
       "them: a note says so when it is set there)"),
    _k("train", "grad_checkpointing", False, "bool", "recompute each block's activations in the backward pass "
       "(timm's set_grad_checkpointing): less memory, about one more forward pass per step; GRAPH mode when "
       "drop_path_rate > 0"),
    _k("train", "is_dynamic_loss_scale", True, "bool", "dynamic loss scale (else static loss_scale)"),
    _k("train", "loss_scale", 1024.0, "float", "(initial) loss scale", positive=True),
    _k("train", "loss_scale_window", 1000, "int", "good steps before the dynamic scale doubles", positive=True),
    _k("train", "use_clip_grad_norm", True, "bool", "clip gradients by global norm (with clip_grad_norm > 0)"),
    _k("train", "clip_grad_norm", 5.0, "float", "max global gradient norm (0 = off)", min=0.0),
    _k("train", "with_ema", False, "bool", "keep an EMA of the weights and validate with it"),
    _k("train", "ema_decay", 0.9999, "float", "EMA decay", min=0.0, max=1.0),
    _k("train", "seed", 0, "int", "random seed", min=0),
    _k("train", "eval_every", 1, "int", "validate every N epochs", positive=True),
    _k("train", "steps_per_epoch", None, "int", "cap optimizer steps per epoch (smoke runs)", nullable=True,
       positive=True),
    # runtime and outputs
    _k("run", "device_target", "auto", "str", "device; auto = Ascend, else GPU, else CPU, whichever this MindSpore "
       "build can use (the choice is printed at start)", choices=("auto", "CPU", "GPU", "Ascend")),
    _k("run", "device_id", 0, "int", "device id for single-device runs (--device_id beats an exported DEVICE_ID, "
       "which beats the config's; launched workers use the launcher's)", min=0),
    _k("run", "mode", "graph", "str", "MindSpore execution mode for the train step", choices=("graph", "pynative")),
    _k("run", "output_dir", "./output", "str", "directory where run directories are created"),
    _k("run", "run_name", None, "str", "run directory name (default: <arch>-<timestamp>)", nullable=True),
    _k("run", "resume", None, "path", "run directory or checkpoint to continue from", nullable=True),
    _k("run", "ckpt_keep_num", 3, "int", "epoch checkpoints kept besides last.ckpt", min=0),
    _k("run", "best_ckpt_num", 1, "int", "best checkpoints kept (by val top-1)", min=0),
    _k("run", "ckpt_save_every_seconds", 0, "int", "also save last.ckpt every N seconds mid-epoch (0 = off)", min=0),
    _k("run", "ckpt_save_every_step", 0, "int", "also save last.ckpt every N optimizer steps mid-epoch (0 = off)",
       min=0),
    _k("run", "print_loss_every", 20, "int", "log line every N steps", positive=True),
    _k("run", "progress", True, "bool", "show a progress bar (off when not a terminal)"),
    # export / inference
    _k("deploy", "file_format", "MINDIR", "str", "export format (OPENVINO: an IR for --backend openvino)",
       choices=("MINDIR", "ONNX", "OPENVINO", "AIR")),
    _k("deploy", "file_name", None, "str", "export file name without extension (default: arch)", nullable=True),
)

KEY_MAP = {k.name: k for k in KEYS}

# The seeds' spellings -> canonical keys.
ALIASES = {
    "mix_up": "mixup",
    "cut_mix": "cutmix",
    "clip_global_norm_value": "clip_grad_norm",
    "warmup_epochs": "warmup_length",
    "dir_ckpt": "output_dir",
    "ckpt_root_dir": "output_dir",
    "set": "dataset",
    "lr": "base_lr",
    "smoothing": "label_smoothing",
    "label_smooth": "label_smoothing",
    "start_lr": "warmup_lr",
    "end_lr": "min_lr",
    "ckpt_path": "pretrained",
    "eval_interval": "eval_every",
    "drop": "drop_rate",
    "drop_path": "drop_path_rate",
    "in_channel": "in_chans",
}

# Seed keys whose value maps onto one of ours: name -> (canonical key, {seed value: our value}).
VALUE_MAPS = {
    "pynative_mode": ("mode", {True: "pynative", False: "graph"}),
    "graph_mode": ("mode", {True: "graph", False: "pynative"}),
}

# Command-line spellings of ``--config`` in the seeds (the TNT and Twins-GPU readmes, the T2T readme).
CONFIG_FLAGS = ("--config", "-c", "--config_path", "--config-path", "--tnt_config", "--tnt-config")


class _ValueNote:
    """The note of an ignored seed key that depends on its value: ``note(value)`` returns the note or raises
    ValueError for a value we cannot honour; ``summary`` is the key's line in the config reference."""

    def __init__(self, summary, note):
        self.summary, self.note = summary, note

    def __call__(self, value):
        return self.note(value)


def _only(expected, why):
    """A seed key with no effect here whose other values would change the model: refuse those."""
    def check(value):
        if str(value).strip().lower() != expected.lower():
            raise ValueError(f"only {expected!r} is supported: {why}")
        return f"{why}; the key has no effect"
    return _ValueNote(f"{why}; the key has no effect", check)


def _off_or_note(why):
    """A seed switch with no effect: a note, which also says when the seed's value asked for something."""
    def check(value):
        on = value not in (None, False, 0, 0.0, "", "0", "false", "False", "none", "None")
        return f"{why}" + (f" (the value {value!r} is not used)" if on else "")
    return _ValueNote(why, check)


_EXACT_GELU = "GELU is the exact (erf) one, as in the published weights"
_SEED_GELU = ", not the tanh approximation the seed used by default"


# Seed keys that are accepted but have no effect here. The reason is shown as a note; a callable gets the
# value and returns the note, or raises ValueError when that value would need behaviour we do not have.
IGNORED = {
    "dir_best_ckpt": "best checkpoints are kept in the run directory",
    "best_ckpt_root_dir": "best checkpoints are kept in the run directory",
    "dir_summary": "metrics.csv and curves.png in the run directory replace summaries",
    "summary_root_dir": "metrics.csv and curves.png in the run directory replace summaries",
    "summary_loss_collect_freq": "metrics.csv and curves.png in the run directory replace summaries",
    "collect_input_data": _off_or_note("MindInsight summaries are not written"),
    "logs_root_dir": "train.log is written in the run directory",
    "model_postfix": "the run directory name is run_name (default: <arch>-<timestamp>)",
    "run_modelarts": "cloud storage is not handled in core code",
    "device_num": "the number of devices comes from the launcher (msrun/mpirun/rank table)",
    "is_distributed": "distribution is detected from the launcher's environment",
    "rank_table": "pass the rank table to scripts/run_distribute_train_ascend.sh",
    "train_url": "outputs go to output_dir",
    "start_epoch": "resume continues from the epoch stored in the checkpoint",
    "exclude_epoch_state": "pretrained always starts at epoch 0 with a new optimizer; --resume continues a "
                           "run's epoch and optimizer state",
    "dataset_sink_mode": "the train step is one compiled graph fed from the dataset engine in either case",
    "dump_graph": _off_or_note("graphs are not dumped (MindSpore's save_graphs context does that)"),
    "aa_interpolation": "auto-augment resamples with the training interpolation (train_interpolation, else "
                        "interpolation), as in timm",
    "drop_block": _off_or_note("these models have no DropBlock"),
    "disable_approximate_gelu": _ValueNote(_EXACT_GELU + _SEED_GELU, lambda v: _EXACT_GELU + (
        "" if coerce("disable_approximate_gelu", "bool", v, "seed key") else _SEED_GELU)),
    "nonlinearity": _only("GELU", "the models' activation is GELU"),
}

# Values of ``dataset`` the seeds used.
DATASET_VALUES = {"imagenet": "imagefolder", "imagefolder": "imagefolder", "digits": "digits"}


@dataclass(frozen=True)
class ExtraArg:
    """A script-specific flag (not part of the saved config), e.g. eval.py's --output."""
    name: str
    default: Any
    type: str
    help: str
    choices: Optional[Tuple] = None
    nullable: bool = True


# eval.py's and infer.py's choice of what runs the model (a checkpoint or an exported file) and how.
BACKEND_ARGS = (
    ExtraArg("backend", "mindspore", "str", "mindspore (checkpoint), mindir, onnx or openvino (exported file)",
             choices=("mindspore", "mindir", "onnx", "openvino")),
    ExtraArg("model", None, "path", "exported .mindir / .onnx / OpenVINO .xml file (backend mindir/onnx/openvino)"),
    ExtraArg("precision", "f32", "str", "openvino: f32 (exact), bf16 (CPUs with BF16) or int8 (NNCF)",
             choices=("f32", "bf16", "int8")),
    ExtraArg("calib_data", None, "path", "openvino int8 from a float model: folder of calibration images"),
)


class Config(dict):
    """The resolved configuration: a dict with attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value


# ---------------------------------------------------------------------------------------------- values

def _type_name(t):
    return {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
            "floats": "a list of numbers", "ints": "a list of integers", "dict": "a mapping",
            "path": "a path"}[t]


class _Wrong(Exception):
    """A value that does not convert to the key's type (coerce turns it into the ConfigError)."""


def _to_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in BOOL_TRUE + BOOL_FALSE:
        return value.strip().lower() in BOOL_TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _Wrong


def _to_int(value):
    if isinstance(value, bool):
        raise _Wrong
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
        try:
            value = float(value)
        except ValueError:
            raise _Wrong from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Wrong


def _to_float(value):
    if isinstance(value, bool):
        raise _Wrong
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise _Wrong from None
    raise _Wrong


def _to_str(value):
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Wrong


def _to_dict(value):
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value) or {}
        except yaml.YAMLError:
            raise _Wrong from None
    if isinstance(value, dict):
        return dict(value)
    raise _Wrong


_CONVERTERS = {"bool": _to_bool, "int": _to_int, "float": _to_float, "str": _to_str, "path": _to_str,
               "dict": _to_dict}


def coerce(key_name, type_, value, source, nullable=False):
    """Convert ``value`` (from YAML or a CLI string) to ``type_``; ConfigError on failure."""
    def fail():
        raise ConfigError(f"{key_name}: expected {_type_name(type_)}, got {value!r} (from {source})")

    if isinstance(value, str) and value.strip().lower() in ("", "none", "null", "~") and (nullable or type_ == "path"):
        return None
    if value is None:
        if nullable:
            return None
        fail()
    if type_ in ("floats", "ints"):  # a YAML list, or "1,2,3" / "[1, 2, 3]" from the command line
        items = value
        if isinstance(value, str):
            text = value.strip()
            items = yaml.safe_load(text if text.startswith("[") else f"[{text}]")
        if not isinstance(items, (list, tuple)):
            fail()
        item = "int" if type_ == "ints" else "float"
        return [coerce(key_name, item, v, source) for v in items]
    if type_ not in _CONVERTERS:
        raise AssertionError(f"unknown key type {type_}")
    try:
        return _CONVERTERS[type_](value)
    except _Wrong:
        fail()


def check_value(key, value, source):
    """Range and choice checks for one canonical key."""
    if value is None:
        return
    where = f"(from {source})"
    if key.choices is not None and value not in key.choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in key.choices], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{key.name}: {value!r} is not one of {', '.join(map(str, key.choices))}{hint} {where}")
    if key.type in ("int", "float"):
        if key.positive and not value > 0:
            raise ConfigError(f"{key.name}: must be > 0, got {value} {where}")
        if key.min is not None and value < key.min:
            raise ConfigError(f"{key.name}: must be >= {key.min}, got {value} {where}")
        if key.max is not None and value > key.max:
            raise ConfigError(f"{key.name}: must be <= {key.max}, got {value} {where}")


def canonical_key(name, source):
    """Map a key from a file or flag (dashes, seed aliases) to its canonical name, or None if ignored."""
    name = name.replace("-", "_")
    name = ALIASES.get(name, name)
    if name in KEY_MAP:
        return name
    if name in IGNORED or name in VALUE_MAPS:
        return None
    known = list(KEY_MAP) + list(ALIASES) + list(IGNORED) + list(VALUE_MAPS)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean '{ALIASES.get(close[0], close[0])}'?" if close else ""
    raise ConfigError(f"unknown key '{name}'{hint} (from {source})")


def _normalise_special(name, value):
    if name == "dataset" and isinstance(value, str):
        return DATASET_VALUES.get(value.strip().lower(), value)
    if name == "auto_augment" and isinstance(value, str) and value.strip().lower() in ("", "none", "null", "off"):
        return None
    if name in ("train_num_samples", "val_num_samples") and str(value).strip() == "-1":
        return None  # the seeds' "all"
    return value


def _seed_key(raw_name, value, source, notes):
    """A seed key without a key of its own: ``(canonical name, value)`` when it maps onto one, else None
    after noting that it has no effect (or a ConfigError when its value needs what we do not have)."""
    name = raw_name.replace("-", "_")
    if name in VALUE_MAPS:
        target, table = VALUE_MAPS[name]
        flag = coerce(name, "bool", value, source)
        return target, table[flag]
    reason = IGNORED[name]
    if callable(reason):
        try:
            reason = reason(value)
        except ValueError as exc:
            raise ConfigError(f"{name}: {value!r}: {exc} (from {source})") from None
    notes.append(f"ignoring seed key '{raw_name}': {reason} (from {source})")
    return None


def apply_mapping(cfg, mapping, source, notes):
    """Apply ``{key: value}`` from one source onto ``cfg`` (canonical keys, coerced, range-checked)."""
    seen = {}
    for raw_name, value in mapping.items():
        if not isinstance(raw_name, str):
            raise ConfigError(f"key {raw_name!r} is not a string (from {source})")
        name = canonical_key(raw_name, source)
        if name is None:
            mapped = _seed_key(raw_name, value, source, notes)
            if mapped is None:
                continue
            name, value = mapped
        key = KEY_MAP[name]
        value = coerce(name, key.type, _normalise_special(name, value), source, nullable=key.nullable)
        if key.choices and isinstance(value, str):
            # Choices are case-insensitive (adamW -> adamw, o1 -> O1).
            value = next((c for c in key.choices if c.lower() == value.lower()), value)
        if name in seen and seen[name][1] != value:
            raise ConfigError(f"{name}: set twice with different values ('{seen[name][0]}' and '{raw_name}') "
                              f"(from {source})")
        check_value(key, value, source)
        seen[name] = (raw_name, value)
        cfg[name] = value
        cfg._sources[name] = source


# ---------------------------------------------------------------------------------------------- files

def load_yaml(path):
    """Read a YAML config with ``yaml.safe_load`` (no code runs); the top level must be a mapping."""
    if not os.path.isfile(path):
        raise ConfigError(f"config: file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        data = _safe_load_tolerating_tabs(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config: invalid YAML in {path}{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: cannot read {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path} must hold a mapping of key: value, not {type(data).__name__}")
    return data


def _safe_load_tolerating_tabs(text):
    """``yaml.safe_load``; a file that YAML rejects only for tabs (the Twins seed's readme aligns its comments
    with tabs, which YAML forbids there) is read with the tabs as spaces, the way its author meant it."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        if "\t" not in text:
            raise
        try:
            return yaml.safe_load(text.replace("\t", "    "))
        except yaml.YAMLError:
            pass
        raise


def copy_config(cfg):
    """An independent copy of ``cfg`` (values, sources and notes): code that resolves keys for one run
    works on a copy and leaves the caller's config as it was."""
    return copy.deepcopy(cfg)


def save_config(cfg, path):
    """Write the resolved config as YAML (keys in the order of KEYS)."""
    data = {k.name: cfg[k.name] for k in KEYS if k.name in cfg}
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False, default_flow_style=None)
    os.replace(tmp, path)


def format_config(cfg):
    """The resolved config as aligned ``key: value  [source]`` lines."""
    width = max(len(k.name) for k in KEYS)
    lines = []
    for key in KEYS:
        src = cfg._sources.get(key.name, "default")
        lines.append(f"  {key.name:<{width}} : {cfg[key.name]!r}" + ("" if src == "default" else f"  [{src}]"))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- CLI

def _flag_help(key):
    return f"{key.help} (default: {key.default!r})"


def build_parser(prog, description, extra=(), positional=()):
    """An argparse parser with ``--config``, one flag per key (both spellings) and script extras."""
    usage = f"{prog} [--config FILE] " + " ".join(f"[--{a.name} VALUE]" for a in extra) + " [--KEY VALUE ...]"
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False, usage=usage)
    parser.add_argument(*CONFIG_FLAGS, dest="config", action="append", default=None,
                        help="YAML recipe (keys below); CLI flags override it (--config_path and --tnt_config, the "
                             "seeds' spellings, are the same flag)")
    for arg in positional:
        parser.add_argument(arg.name, help=arg.help)
    script_group = parser.add_argument_group(f"{prog} options")
    for arg in extra:
        flags = [f"--{arg.name}"] + ([f"--{arg.name.replace('_', '-')}"] if "_" in arg.name else [])
        if arg.type == "flag":
            script_group.add_argument(*flags, dest=arg.name, action="store_true", help=arg.help)
        else:
            script_group.add_argument(*flags, dest=arg.name, default=None, metavar="VALUE",
                                      help=f"{arg.help} (default: {arg.default!r})")
    groups = {}
    for key in KEYS:
        group = groups.setdefault(key.group, parser.add_argument_group(f"config keys: {key.group}"))
        flags = [f"--{key.name}"] + ([f"--{key.name.replace('_', '-')}"] if "_" in key.name else [])
        metavar = "{" + ",".join(map(str, key.choices)) + "}" if key.choices else key.type.upper()
        group.add_argument(*flags, dest=f"cfg__{key.name}", default=None, metavar=metavar, help=_flag_help(key))
    # The seeds' other keys work on the command line too (hidden from --help); a switch without a value
    # (``--dump_graph``) means true.
    extra_names = {a.name for a in extra}
    for alias in _seed_names():
        if alias in KEY_MAP or alias in extra_names:
            continue
        flags = [f"--{alias}"] + ([f"--{alias.replace('_', '-')}"] if "_" in alias else [])
        parser.add_argument(*flags, dest=f"alias__{alias}", default=None, nargs="?", const="true",
                            help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", "--no_progress", dest="cfg_no_progress", action="store_true",
                        help="same as --progress false")
    return parser


def parse_config(argv=None, prog="train.py", description="", extra=(), positional=(), defaults=None):
    """Resolve the configuration: defaults -> ``defaults`` (script) -> YAML -> CLI.

    Returns ``(cfg, args)``: ``cfg`` is a ``Config`` of every key, ``args`` holds the script extras.
    Raises ``ConfigError`` for user errors; ``--help`` exits through argparse as usual.
    """
    parser = build_parser(prog, description, extra, positional)
    try:
        ns, unknown = parser.parse_known_args(argv)
    except SystemExit as exc:
        if exc.code == 0:
            raise
        raise ConfigError("command line: invalid arguments (see --help)") from None
    if unknown:
        flag = unknown[0]
        name = flag.lstrip("-").split("=")[0]
        if flag.startswith("-"):
            canonical_key(name, "command line")  # raises with a did-you-mean
        raise ConfigError(f"command line: unexpected argument {flag!r}")

    cfg = Config({k.name: _copy(k.default) for k in KEYS})
    object.__setattr__(cfg, "_sources", {})
    notes = []
    object.__setattr__(cfg, "_notes", notes)
    config_file = _one_config_file(ns.config, notes)
    if defaults:
        apply_mapping(cfg, defaults, f"{prog} defaults", notes)
    if config_file:
        apply_mapping(cfg, load_yaml(config_file), config_file, notes)
    apply_mapping(cfg, _cli_values(ns), "command line", notes)
    object.__setattr__(cfg, "config_file", config_file)
    note = keep_bn_fp32_note(cfg)
    if note:
        notes.append(note)

    args = Config()
    for arg in extra:
        raw = getattr(ns, arg.name)
        if arg.type == "flag":
            args[arg.name] = bool(raw)
            continue
        value = arg.default if raw is None else coerce(arg.name, arg.type, raw, "command line", arg.nullable)
        if value is not None and arg.choices and value not in arg.choices:
            raise ConfigError(f"{arg.name}: {value!r} is not one of {', '.join(arg.choices)} (from command line)")
        args[arg.name] = value
    for arg in positional:
        args[arg.name] = getattr(ns, arg.name)
    return cfg, args


def _cli_values(ns):
    """The keys given on the command line (their own flags and the seeds' spellings), as ``{key: text}``."""
    cli = {}
    for key in KEYS:
        value = getattr(ns, f"cfg__{key.name}")
        if value is not None:
            cli[key.name] = value
    for alias in _seed_names():
        value = getattr(ns, f"alias__{alias}", None)
        if value is not None:
            cli[alias] = value
    if ns.cfg_no_progress:
        cli["progress"] = "false"
    return cli


def keep_bn_fp32_note(cfg):
    """A note when ``keep_bn_fp32`` was set but the AMP level makes it meaningless (O0, O1), else None."""
    source = source_of(cfg, "keep_bn_fp32")
    if source == "default" or cfg.amp_level not in ("O0", "O1"):
        return None
    why = ("nothing is cast to float16" if cfg.amp_level == "O0" else
           "O1 casts only MindSpore's white list (Dense, Conv, MatMul ...) to float16, never the norm layers")
    return (f"keep_bn_fp32: {str(cfg.keep_bn_fp32).lower()} has no effect at amp_level {cfg.amp_level}: {why}, so "
            f"they stay float32 either way; it matters at O2 and O3 (from {source})")


def _seed_names():
    return list(ALIASES) + list(IGNORED) + list(VALUE_MAPS)


def _one_config_file(given, notes):
    """The config file from ``--config`` and its seed spellings; naming two different files is an error."""
    files = list(dict.fromkeys(given or []))
    if len(files) > 1:
        raise ConfigError(f"config: two config files given ({', '.join(files)}); --config, --config_path and "
                          "--tnt_config are the same flag (from command line)")
    return find_config(files[0], notes) if files else None


def find_config(given, notes=None):
    """``given`` when it is a file, else the shipped recipe it names (``twins/svt_small``, ``quickstart``), else
    our recipe of the seed recipe it names (``configs/svt_s.yaml``; a note naming both files and where the
    hyper-parameters differ goes to ``notes``); anything else is one ``ConfigError`` listing close recipe names."""
    if os.path.isfile(given):
        return given
    shipped = recipe_path(given)
    if shipped:
        return shipped
    seed = seed_recipe(given)
    if seed:
        if notes is not None:
            notes.append(seed_recipe_note(given, *seed))
        return seed[1]
    near = close_recipes(given)
    hint = f" (nor a shipped recipe; close recipe names: {', '.join(near)})" if near else ""
    named = SEED_RECIPES.get(os.path.basename(given.replace("\\", "/")))
    if named:
        hint = f" (a seed recipe's name: ours of that model is {recipe_path(named[1])})"
    raise ConfigError(f"config: file not found: {given}{hint}")


# Keys of a recipe that are not training hyper-parameters (where the data is, the machine, the run's files).
_NOT_HYPER = {"arch", "pretrained", "dataset", "data_url", "train_dir", "val_dir", "train_num_samples",
              "val_num_samples", "num_parallel_workers", "steps_per_epoch", "eval_every"}
_HYPER_GROUPS = ("model", "data", "mixup", "optim", "train")


def _recipe_values(path):
    cfg = Config({k.name: _copy(k.default) for k in KEYS})
    object.__setattr__(cfg, "_sources", {})
    apply_mapping(cfg, load_yaml(path), path, [])
    return cfg


def recipe_differences(ours_path, seed_path):
    """``[(key, ours, seed's)]`` for each hyper-parameter the seed's YAML states and our recipe sets otherwise."""
    ours, seed = _recipe_values(ours_path), _recipe_values(seed_path)
    diffs = []
    for key in KEYS:
        if key.group not in _HYPER_GROUPS or key.name in _NOT_HYPER or seed._sources.get(key.name) != seed_path:
            continue
        a, b = ours[key.name], seed[key.name]
        same = a == b or (isinstance(a, float) and isinstance(b, float) and abs(a - b) <= 1e-12 * max(abs(a), 1))
        if not same:
            diffs.append((key.name, a, b))
    return diffs, ours


def seed_recipe_note(given, seed, ours_path, seed_path):
    """The note of a seed recipe name: both files, and the hyper-parameters in which ours differs where the seed
    states them."""
    text = (f"{given} names a recipe of {seed}, which is not here: using ours, {ours_path} (the official recipe of "
            "the same model)")
    if seed_path is None:
        return text + "; the seed's readme states none of its hyper-parameters to compare"
    diffs, ours = recipe_differences(ours_path, seed_path)
    if not diffs:
        return text + f"; it has every hyper-parameter the seed states ({seed_path})"
    items = []
    for name, mine, theirs in diffs:
        scaled = f" x global batch / {ours.lr_scale_batch}" if name == "base_lr" and ours.lr_scale_batch else ""
        items.append(f"{name} {mine!r}{scaled} (seed {theirs!r})")
    return text + f"; where the seed states them ({seed_path}), ours differs in: " + ", ".join(items)


def parse_script_args(parser, argv=None, known=False):
    """``parser.parse_args`` for scripts with their own argparse parser: a usage error becomes one
    ``ConfigError`` line (exit code 2 through ``mszoo.cli.run``); ``--help`` still exits normally."""
    try:
        return parser.parse_known_args(argv) if known else parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0:
            raise
        raise ConfigError("command line: invalid arguments (see --help)") from None


def _copy(value):
    if isinstance(value, (list, dict)):
        return type(value)(value)
    return value


def source_of(cfg, name):
    return getattr(cfg, "_sources", {}).get(name, "default")


def validate(cfg, need_data=False, need_train_data=False):
    """Cross-key and file-system checks that depend on what the script is about to do."""
    def err(name, message):
        raise ConfigError(f"{name}: {message} (from {source_of(cfg, name)})")

    for name in ("pretrained", "resume"):
        path = cfg[name]
        if path and not (name == "pretrained" and names_published_weights(path)) and not os.path.exists(path):
            err(name, f"not found: {path}")
    if cfg.min_lr > cfg.base_lr:
        err("min_lr", f"{cfg.min_lr} is larger than base_lr {cfg.base_lr}")
    if len(cfg.beta) != 2 or not all(0.0 <= b < 1.0 for b in cfg.beta):
        err("beta", f"needs two values in [0, 1), got {cfg.beta}")
    for name in ("mean", "std"):
        if cfg[name] is not None and len(cfg[name]) != cfg.in_chans:
            err(name, f"needs {cfg.in_chans} values, got {cfg[name]}")
    if cfg.std is not None and any(s <= 0 for s in cfg.std):
        err("std", f"values must be > 0, got {cfg.std}")
    if cfg.warmup_length + cfg.cooldown_epochs > cfg.epochs and cfg.epochs > 1:
        err("warmup_length", f"warmup ({cfg.warmup_length}) + cooldown ({cfg.cooldown_epochs}) epochs exceed "
                             f"epochs ({cfg.epochs})")
    if (cfg.mixup > 0 or cfg.cutmix > 0) and cfg.mixup_prob > 0 and cfg.batch_size % 2:
        err("batch_size", f"mixup/cutmix need an even batch size, got {cfg.batch_size}")
    if need_data and cfg.dataset == "imagefolder":
        _check_data_dirs(cfg, err, need_train_data)


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


def reference_markdown():
    """The config reference table (README section), generated so it cannot drift from KEYS."""
    lines = ["| key | default | type | help |", "|---|---|---|---|"]
    for key in KEYS:
        choices = f" One of: {', '.join(map(str, key.choices))}." if key.choices else ""
        default = "`" + repr(key.default).replace("|", "\\|") + "`"
        lines.append(f"| `{key.name}` | {default} | {key.type} | {key.help}.{choices} |")
    lines.append("")
    lines.append("Seed aliases: " + ", ".join(f"`{a}` -> `{t}`" for a, t in sorted(ALIASES.items())) + ".")
    lines.append("Seed switches: " + ", ".join(f"`{a}: true` -> `{t}: {m[True]}`"
                                               for a, (t, m) in sorted(VALUE_MAPS.items())) + ".")
    lines.append("`--config_path` and `--tnt_config` are `--config`. `train_num_samples`/`val_num_samples` "
                 "-1 mean all; a relative `train_dir`/`val_dir` is under `data_url`.")
    lines.append("")
    lines.append("Seed keys accepted with no effect here (a note at start says so):")
    lines.append("")
    for name in sorted(IGNORED):
        why = IGNORED[name]
        text = why if isinstance(why, str) else why.summary
        lines.append(f"- `{name}`: {text}.")
    return "\n".join(lines)

