"""eval.py / infer.py's backend: the fastest exact one for the device, said in one line.

On CPU, with OpenVINO installed, a checkpoint (``--pretrained``) runs under OpenVINO in float32 (logits within
1e-4 of MindSpore's, tested) from an IR exported once and cached by the checkpoint's hash
(mszoo/deploy/ir_cache.py). The export runs in a child process, so the process that classifies never imports
MindSpore: its peak memory is OpenVINO's and the model's, not MindSpore's as well (docs/benchmarks.md). GPU and
Ascend run MindSpore; so does a CPU without OpenVINO, with a note naming the extra that brings it.
``--backend`` chooses explicitly; ``MSZOO_BACKEND`` sets the default (the test suite sets ``mindspore``).
"""
import concurrent.futures
import glob
import multiprocessing
import os
import shutil
import time

from mszoo.config import ConfigError
from mszoo.extras import install_hint, installed
from mszoo.fileio import sha256_file
from mszoo.logger import get_logger

CHOICES = ("mindspore", "mindir", "onnx", "openvino")
BY_EXTENSION = {".xml": "openvino", ".onnx": "onnx", ".mindir": "mindir"}
# Device nodes of the accelerators MindSpore can use: without any, "auto" is the CPU without asking MindSpore.
ACCELERATOR_NODES = ("/dev/nvidia[0-9]*", "/dev/davinci[0-9]*")


def accelerator_present():
    return any(glob.glob(pattern) for pattern in ACCELERATOR_NODES)


def runs_on_cpu(device_target):
    """True when ``device_target`` resolves to the CPU. ``auto`` asks MindSpore only where a GPU or Ascend
    device node exists (importing it is most of a run's memory, which the OpenVINO path avoids)."""
    if device_target != "auto":
        return device_target == "CPU"
    if not accelerator_present():
        return True
    import mindspore as ms

    from mszoo.cli import choose_device

    return choose_device("auto", ms.hal.is_available)[0] == "CPU"


def choose_backend(cfg, args, environ=None):
    """``(backend, why)`` for eval.py / infer.py (module docstring). ``args.backend`` is ``auto`` unless given."""
    environ = os.environ if environ is None else environ
    if args.backend != "auto":
        return args.backend, "--backend"
    default = environ.get("MSZOO_BACKEND", "").strip()
    if default:
        if default not in CHOICES:
            raise ConfigError(f"MSZOO_BACKEND: {default!r} is not one of {', '.join(CHOICES)} (from the environment)")
        return default, "MSZOO_BACKEND"
    if args.model:
        ext = os.path.splitext(args.model)[1].lower()
        if ext not in BY_EXTENSION:
            raise ConfigError(f"--model {args.model}: give --backend (mindir, onnx or openvino) for this file")
        return BY_EXTENSION[ext], f"the {ext} file"
    if not runs_on_cpu(cfg.device_target):
        return "mindspore", f"device_target {cfg.device_target}"
    if not installed("openvino"):
        get_logger().info(f"note: OpenVINO is not installed, so MindSpore runs the model; {install_hint('openvino')} "
                          "brings the faster OpenVINO path")
        return "mindspore", "the CPU without OpenVINO"
    return "openvino", "the CPU's default"


def local_checkpoint(cfg):
    """``cfg.pretrained`` as a local MindSpore checkpoint (published weights and PyTorch files converted once)."""
    spec = cfg.pretrained
    if not spec:
        raise ConfigError("pretrained: give the checkpoint to use (--pretrained FILE.ckpt); a model with random "
                          "weights is never exported or run")
    if isinstance(spec, str) and spec.endswith(".ckpt"):
        if not os.path.isfile(spec):
            raise ConfigError(f"pretrained: checkpoint not found: {spec}")
        return spec
    from mszoo.resolve import pretrained_file

    return pretrained_file(cfg)


def cached_ir(cfg):
    """``(ir_path, record)`` of ``cfg.pretrained`` in the IR cache, exported first (in a child process) when the
    cache has no entry for this checkpoint and these settings."""
    from mszoo.deploy import ir_cache

    checkpoint = local_checkpoint(cfg)
    digest = sha256_file(checkpoint)
    key = ir_cache.entry_key(cfg, digest)
    hit = ir_cache.lookup(key)
    if hit is not None:
        return hit + ("cached",)
    log = get_logger()
    log.info(f"exporting {cfg.pretrained} to an OpenVINO IR under {ir_cache.cache_root()} (once per checkpoint; "
             "the next run starts from it)")
    t0 = time.perf_counter()
    staging = os.path.join(ir_cache.staging_dir(), ir_cache.IR_NAME)
    try:
        export_in_child(cfg, staging, checkpoint, digest)
        ir_cache.commit_entry(staging, key)
    finally:
        shutil.rmtree(os.path.dirname(staging), ignore_errors=True)
    hit = ir_cache.lookup(key)
    if hit is None:
        raise ValueError(f"the OpenVINO export of {cfg.pretrained} left no IR in {ir_cache.cache_root()}")
    return hit + (f"exported in {time.perf_counter() - t0:.1f} s",)


def export_in_child(cfg, path, checkpoint, digest):
    """Export ``cfg.pretrained`` as an OpenVINO IR to ``path`` in a child process (MindSpore's import and
    compiles stay out of this process's memory). A user error there is raised here; a crash is one line."""
    context = multiprocessing.get_context("spawn")
    try:
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            return pool.submit(_export, cfg, path, checkpoint, digest).result()
    except concurrent.futures.process.BrokenProcessPool:
        raise ValueError(f"the OpenVINO export of {cfg.pretrained} stopped (its process died); "
                         "--backend mindspore runs without it") from None


def _export(cfg, path, checkpoint, digest):
    """The child's work: MindSpore on the CPU, the checkpoint's model, its IR and sidecar at ``path``; then a
    check that the checkpoint read is the one hashed (``digest``)."""
    from mszoo.cli import set_device

    set_device("CPU", mode="graph")
    from mszoo.deploy import ir_cache
    from mszoo.deploy.export import build_deploy_model, export_to_file

    model, class_names = build_deploy_model(cfg)
    written = export_to_file(model, cfg, "OPENVINO", path, class_names=class_names)
    ir_cache.check_unchanged(checkpoint, digest)
    return written


def prepare_backend(cfg, args, need_data=False):
    """The backend of this run: ``({backend, model, checked_record} for args, the line that says it)``. For OpenVINO
    from ``--pretrained`` (no ``--model``), ``model`` is the cached IR (exported first when missing) and
    ``checked_record`` its record. ``need_data``: eval.py takes what a training checkpoint's saved config gives
    (the data location, as on the MindSpore path) and its data settings are checked before any export."""
    backend, why = choose_backend(cfg, args)
    model, record, where = args.model, None, None
    if backend == "openvino" and not model:
        if need_data:
            from mszoo.config import validate
            from mszoo.engine.checkpoint import load_training_checkpoint
            from mszoo.engine.datasets import take_saved_config

            take_saved_config(cfg, load_training_checkpoint(local_checkpoint(cfg)))
            validate(cfg, need_data=True)
        model, record, how = cached_ir(cfg)
        where = f"IR {how}: {model}"
    what = f"openvino {args.precision}" if backend == "openvino" else backend
    line = f"backend: {what} ({why}{'; ' + where if where else ''})"
    return dict(backend=backend, model=model, checked_record=record), line
