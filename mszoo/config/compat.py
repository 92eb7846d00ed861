"""The spellings of the MindSpore model-zoo readmes: the readmes, YAML files, scripts and MindSpore code of the
model-zoo projects (Twins, T2T-ViT, TNT) this project grew from and its users come from. Elsewhere in the code they
are "the model-zoo readmes" (their keys: "model-zoo readme keys"; their code: "the model-zoo code"). Here: key
aliases (``mix_up`` -> ``mixup``), switches that map onto one of our keys, keys accepted with a note because they
have no effect here, the readmes' ``--config`` flags and dataset names, and the YAML tab workaround one readme
needs. Everything a model-zoo readme YAML says is either mapped or noted, never dropped silently."""
import difflib

import yaml

from .coerce import coerce
from .keys import KEY_MAP, ConfigError

# The model-zoo readmes' spellings -> canonical keys.
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


# Model-zoo readme keys whose value maps onto one of ours: name -> (canonical key, {readme value: our value}).
VALUE_MAPS = {
    "pynative_mode": ("mode", {True: "pynative", False: "graph"}),
    "graph_mode": ("mode", {True: "graph", False: "pynative"}),
}


# Command-line spellings of ``--config`` in the model-zoo readmes (the TNT and Twins-GPU readmes, the T2T readme).
CONFIG_FLAGS = ("--config", "-c", "--config_path", "--config-path", "--tnt_config", "--tnt-config")


class _ValueNote:
    """The note of an ignored model-zoo readme key that depends on its value: ``note(value)`` returns the note or raises
    ValueError for a value we cannot honour; ``summary`` is the key's line in the config reference."""

    def __init__(self, summary, note):
        self.summary, self.note = summary, note

    def __call__(self, value):
        return self.note(value)


def _only(expected, why):
    """A model-zoo readme key with no effect here whose other values would change the model: refuse those."""
    def check(value):
        if str(value).strip().lower() != expected.lower():
            raise ValueError(f"only {expected!r} is supported: {why}")
        return f"{why}; the key has no effect"
    return _ValueNote(f"{why}; the key has no effect", check)


def _off_or_note(why):
    """A model-zoo readme switch with no effect: a note, which also says when the readme's value asked for something."""
    def check(value):
        on = value not in (None, False, 0, 0.0, "", "0", "false", "False", "none", "None")
        return f"{why}" + (f" (the value {value!r} is not used)" if on else "")
    return _ValueNote(why, check)


_EXACT_GELU = "GELU is the exact (erf) one, as in the published weights"


_SEED_GELU = ", not the tanh approximation the model-zoo code used by default"


# Model-zoo readme keys that are accepted but have no effect here. The reason is shown as a note; a callable gets the
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
        "" if coerce("disable_approximate_gelu", "bool", v, "model-zoo readme key") else _SEED_GELU)),
    "nonlinearity": _only("GELU", "the models' activation is GELU"),
}


# Values of ``dataset`` the model-zoo readmes used.
DATASET_VALUES = {"imagenet": "imagefolder", "imagefolder": "imagefolder", "digits": "digits"}


def canonical_key(name, source):
    """Map a key from a file or flag (dashes, model-zoo readme aliases) to its canonical name, or None if ignored."""
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
        return None  # the model-zoo readmes' "all"
    return value


def _seed_key(raw_name, value, source, notes):
    """A model-zoo readme key without a key of its own: ``(canonical name, value)`` when it maps onto one, else None
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
    notes.append(f"ignoring model-zoo readme key '{raw_name}': {reason} (from {source})")
    return None


def _safe_load_tolerating_tabs(text):
    """``yaml.safe_load``; a file that YAML rejects only for tabs (the Twins Ascend readme aligns its comments
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


def _seed_names():
    return list(ALIASES) + list(IGNORED) + list(VALUE_MAPS)
