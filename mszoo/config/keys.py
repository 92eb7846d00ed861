"""The key table: every config key once, with its default, type, range and one-line help; the ``Config`` a run
resolves to; the extra arguments of single scripts. Imports nothing else of mszoo.config."""
from dataclasses import dataclass
from typing import Any, Optional

from mszoo.constants import LR_SCHEDULERS, OPTIMIZERS

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
    choices: Optional[tuple] = None
    min: Optional[float] = None  # inclusive lower bound
    max: Optional[float] = None  # inclusive upper bound
    positive: bool = False  # strictly > 0
    nullable: bool = False


def _k(group, name, default, type_, help_, **kw):
    return Key(name=name, default=default, type=type_, help=help_, group=group, **kw)


KEYS = (
    # model
    _k("model", "arch", "twins_pcpvt_small", "str",
       "model name (see list_models(); the model-zoo readmes' names are aliases)"),
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
    _k("data", "num_parallel_workers", 8, "int", "dataset engine workers per process, capped at the CPU count "
       "(1: one thread in the main process; batches are the same with any count)", positive=True),
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
    _k("run", "compile_cache", True, "bool", "reuse the compiled train and eval graphs of an earlier run with the same "
       "graphs (MindSpore's compile cache, under $MSZOO_CACHE/compile/<hash of the config, mszoo's source and the "
       "MindSpore version>); false compiles afresh and writes no cache"),
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


@dataclass(frozen=True)
class ExtraArg:
    """A script-specific flag (not part of the saved config), e.g. eval.py's --output."""
    name: str
    default: Any
    type: str
    help: str
    choices: Optional[tuple] = None
    nullable: bool = True


# eval.py's and infer.py's choice of what runs the model (a checkpoint or an exported file) and how.
BACKEND_ARGS = (
    ExtraArg("backend", "auto", "str", "auto (on CPU: OpenVINO f32 from an IR cached by the checkpoint's hash when "
             "installed, else MindSpore; $MSZOO_BACKEND sets it), mindspore (checkpoint), mindir, onnx or openvino "
             "(exported file, or --pretrained through the IR cache)",
             choices=("auto", "mindspore", "mindir", "onnx", "openvino")),
    ExtraArg("model", None, "path", "exported .mindir / .onnx / OpenVINO .xml file (backend mindir/onnx/openvino)"),
    ExtraArg("precision", "f32", "str", "openvino: f32 (exact), bf16 (CPUs with BF16) or int8 (NNCF)",
             choices=("f32", "bf16", "int8")),
    ExtraArg("calib_data", None, "path", "openvino int8 from a float model: folder of calibration images"),
)


class Config(dict):
    """The resolved configuration: a dict with attribute access, which also remembers where each key's value came
    from (``source_of``: a file, ``command line``, ...; ``default`` when nothing set it) and the notes that
    resolving it produced (``notes``: keys with no effect, a model-zoo readme recipe name's differences), which the
    entry points print at start."""

    config_file = None  # the YAML file the values came from, if any

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "_sources", {})
        object.__setattr__(self, "_notes", [])

    @classmethod
    def defaults(cls):
        """Every key at its documented default."""
        return cls({k.name: _copy_default(k.default) for k in KEYS})

    def set(self, name, value, source):
        """Set key ``name`` to ``value``, remembering that ``source`` set it."""
        self[name] = value
        self._sources[name] = source

    def set_source(self, name, source):
        """Record that ``source`` decided key ``name``'s value (set elsewhere, e.g. resolved from ``auto``)."""
        self._sources[name] = source

    def source_of(self, name):
        """Where key ``name``'s value came from, ``"default"`` when nothing set it."""
        return self._sources.get(name, "default")

    @property
    def notes(self):
        """The notes resolving this config produced, in order (a list the resolvers append to)."""
        return self._notes

    def add_note(self, text):
        self._notes.append(text)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value


def _copy_default(value):
    """A default that a run may change in place (a list, a dict) is copied, so runs never share it."""
    return type(value)(value) if isinstance(value, (list, dict)) else value
