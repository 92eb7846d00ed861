"""Shared entry-point plumbing: quiet MindSpore, device set-up, and clean exits on user errors.

This is the only module that changes process-wide state (environment variables, MindSpore's device,
execution mode and distributed init), and only when a root script calls it: importing or calling the rest
of ``mszoo`` changes none of it. Root scripts are thin: ``run(main)`` quiets MindSpore's logging, calls
``main()`` and turns a user error (bad config, missing file, wrong checkpoint, corrupt data, unavailable
device) into one line on stderr and a non-zero exit code, instead of a traceback from deep inside
MindSpore. Set ``MSZOO_DEBUG=1`` to see the full traceback. ``start(cfg)`` sets the device.
"""
import os
import sys
from contextlib import contextmanager

from mszoo.config import ConfigError, source_of
from mszoo.cpu.launch import set_cpu_device

EXIT_CONFIG = 2
EXIT_USER = 1
EXIT_INTERRUPTED = 130


class DeviceUnavailable(ValueError):
    """The requested device is not usable with this MindSpore installation (one line, exit code 1)."""


def _one_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run(main, argv=None):
    """Run ``main(argv)`` and map known failures to exit codes with one clear message."""
    os.environ.setdefault("GLOG_v", "3")  # before main() imports MindSpore
    debug = os.environ.get("MSZOO_DEBUG", "") not in ("", "0")
    try:
        code = main(argv)
    except ConfigError as exc:
        if debug:
            raise
        print(f"config error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, FileNotFoundError, PermissionError, OSError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER
    return int(code or 0)


def console(main):
    """The ``mszoo-*`` console command of a program's ``main(argv)``: the same run as its root script."""
    def command():
        sys.exit(run(main))

    command.__doc__ = main.__doc__
    return command


def launcher_world_size():
    """Processes started by the launcher (msrun, mpirun, Ascend rank table); 1 for a plain run."""
    for var in ("MS_WORKER_NUM", "OMPI_COMM_WORLD_SIZE", "RANK_SIZE"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 1


def init_distributed():
    """Initialise collective communication when a launcher started several processes.

    Returns ``(rank, group_size)``. The backend follows the device (HCCL on Ascend, NCCL on GPU, MCCL
    on CPU). Under msrun the scheduler process also runs the script: ``init()`` serves the cluster
    and ends that process, so nothing after this call runs there.
    """
    import mindspore as ms
    from mindspore.communication import GlobalComm, get_group_size, get_rank, init

    if launcher_world_size() <= 1:
        return 0, 1
    if not GlobalComm.INITED:
        init()
        ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                     device_num=get_group_size())
    return get_rank(), get_group_size()


# auto's order of preference: the first device this MindSpore installation can use.
AUTO_ORDER = ("Ascend", "GPU")


def choose_device(requested, is_available, version=""):
    """``(device, why)``: the device to run on and the reason shown at start.

    ``auto`` takes Ascend, else GPU, else CPU, whichever ``is_available(name)`` (MindSpore's
    ``hal.is_available``) says this installation can use. An explicit device it cannot use is one
    ``DeviceUnavailable`` line naming the usable ones."""
    if requested == "auto":
        for device in AUTO_ORDER:
            if is_available(device):
                return device, "auto: the first of Ascend, GPU, CPU this MindSpore build can use"
        return "CPU", "auto: this MindSpore build has no GPU or Ascend backend"
    if not is_available(requested):
        usable = [d for d in ("CPU", "GPU", "Ascend") if is_available(d)]
        raise DeviceUnavailable(f"device_target {requested} is not available in this MindSpore {version} "
                                f"installation (usable: {', '.join(usable) or 'none'}); use --device_target "
                                f"{usable[0] if usable else 'CPU'} (or auto) or install MindSpore built for "
                                f"{requested}")
    return requested, "device_target"


def _env_device_id(environ):
    """The device a multi-process launcher gave this worker (msrun and rank tables: DEVICE_ID; mpirun: the local
    rank), else the DEVICE_ID the user exported; ``(id or None, where)``."""
    launched = launcher_world_size() > 1
    for var in ("DEVICE_ID",) + (("OMPI_COMM_WORLD_LOCAL_RANK",) if launched else ()):
        value = environ.get(var, "").strip()
        if value:
            if not value.isdigit():
                raise ConfigError(f"{var}: the environment variable must be a non-negative integer, got {value!r}")
            return int(value), var
    return None, None


def choose_device_id(device_id, source, environ):
    """``(id, note)``: ``--device_id`` on the command line beats an exported DEVICE_ID, which beats the config's
    (YAML or default); a note says when the two differ. A worker started by a multi-process launcher (msrun,
    mpirun, rank table) uses the device the launcher gave it."""
    env_id, var = _env_device_id(environ)
    if env_id is None or env_id == device_id:
        return device_id, None
    if launcher_world_size() > 1:
        return env_id, f"device_id {device_id} ({source}) is not used: the launcher gave this worker {var}={env_id}"
    if source == "command line":
        return device_id, f"--device_id {device_id} is used, not the environment's {var}={env_id}"
    where = "" if source == "default" else f" ({source})"
    return env_id, f"device {env_id} from the environment's {var}, not device_id {device_id}{where}"


def set_device(device_target="auto", device_id=0, mode="pynative", cpu_kernels=True, id_source="command line",
               fused_kernels=False):
    """The one place that picks the device, the execution mode and (when launched so) data parallelism.

    Prints one line naming the device and why. Returns ``(device, device_id, rank, group_size)``.
    ``cpu_kernels=False`` leaves oneDNN uncapped: for runs whose compute is not MindSpore's (onnxruntime,
    OpenVINO, which also reads ONEDNN_MAX_CPU_ISA and loses AVX-512 and bf16 under the cap). ``fused_kernels``: the
    process gives its models the fused CPU kernels (training, MindSpore evaluation and inference; the cap is lifted
    where they will run: ``mszoo/cpu/onednn.py``)."""
    import mindspore as ms

    from mszoo.logger import get_logger

    device, why = choose_device(device_target, ms.hal.is_available, ms.__version__)
    note = None
    if device == "CPU":
        set_cpu_device(cap_onednn=cpu_kernels, fused_kernels=fused_kernels)
    else:
        device_id, note = choose_device_id(device_id, id_source, os.environ)
        ms.set_device(device, device_id)
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    rank, group_size = init_distributed()
    log = get_logger()
    log.info(f"device: {device}{'' if device == 'CPU' else f' {device_id}'} ({why})")
    if note:
        log.info(f"note: {note}")
    return device, device_id, rank, group_size


COMPILE_CACHE_ENV = ("MS_COMPILER_CACHE_ENABLE", "MS_COMPILER_CACHE_PATH")


@contextmanager
def compile_cache_confined():
    """The compile-cache variables ``use_compile_cache`` sets last only as long as one training run: a later run or
    compile in the same process (a notebook, a test) never reads graphs cached under the earlier run's key."""
    saved = {k: os.environ.get(k) for k in COMPILE_CACHE_ENV}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_CACHE_LOCKS = []  # the compile-cache directories this process holds (flock), open until it exits


def _lock_cache_dir(path):
    """True when this process now holds ``path`` alone: MindSpore writes its cache files in place, so a second run
    with the same key at the same time must neither read half-written graphs nor write over them."""
    import fcntl

    os.makedirs(path, exist_ok=True)
    fd = os.open(os.path.join(path, ".lock"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _CACHE_LOCKS.append(fd)
    return True


def _compile_afresh(message):
    """Compile cache off for this run: also unset a ``MS_COMPILER_CACHE_ENABLE`` from the environment, whose
    cache is not keyed by the model's shapes (``compile_cache_confined`` restores it after the run). Returns None."""
    from mszoo.logger import get_logger

    if os.environ.pop("MS_COMPILER_CACHE_ENABLE", None) is not None:
        get_logger().info("compile cache: MS_COMPILER_CACHE_ENABLE from the environment is ignored for this run")
    if message:
        get_logger().info(message)
    return None


def use_compile_cache(cfg, group_size):
    """Turn on MindSpore's compile cache for the graphs of the resolved training config ``cfg`` (GRAPH mode,
    ``compile_cache`` true), in the directory ``mszoo.engine.compile_cache`` names for them; logs whether it
    holds graphs already. Called by the trainer once the config is resolved, before the first compile (the
    entry point passes it: the environment is set only here). A directory another running process holds is
    left to it (this run compiles afresh). Returns the directory, or None when off."""
    import mindspore as ms

    from mszoo.engine.compile_cache import compile_cache_dir
    from mszoo.logger import get_logger

    if not cfg.compile_cache or cfg.mode != "graph":
        return _compile_afresh(None)
    if not os.path.isfile(os.path.realpath(sys.argv[0])):  # MindSpore hashes the entry script with the graphs
        return _compile_afresh(f"compile cache: off (MindSpore's cache needs the program to be a script file, not "
                               f"{sys.argv[0]!r}); compiling afresh")
    path = compile_cache_dir(cfg, group_size, ms.__version__)
    reused = os.path.isdir(path) and any(f.endswith(".mindir") for _, _, files in os.walk(path) for f in files)
    if not _lock_cache_dir(path):
        return _compile_afresh(f"compile cache: {path} is in use by another run; compiling afresh")
    os.environ["MS_COMPILER_CACHE_ENABLE"] = "1"
    os.environ["MS_COMPILER_CACHE_PATH"] = path
    get_logger().info(f"compile cache: {path} ({'reusing its graphs' if reused else 'new'}; "
                      "--compile_cache false to compile afresh)")
    return path


def start(cfg, mode=None, cpu_kernels=True, notes=True, fused_kernels=False):
    """Set the device of a resolved config (``device_target``, ``device_id``, ``mode`` unless given); the config
    then holds the device in use (``auto`` resolved). ``notes``: print the config's notes (model-zoo readme keys with no
    effect, a model-zoo readme recipe's stand-in); the trainer prints them into train.log instead. Returns
    ``(rank, group_size)``."""
    device, device_id, rank, group_size = set_device(cfg.device_target, cfg.device_id, mode or cfg.mode,
                                                     cpu_kernels=cpu_kernels, id_source=source_of(cfg, "device_id"),
                                                     fused_kernels=fused_kernels)
    if cfg.device_target == "auto":
        cfg.set_source("device_target", "auto")
    if device_id != cfg.device_id:
        cfg.set_source("device_id", "environment")
    cfg.device_target, cfg.device_id = device, device_id
    if notes:
        from mszoo.logger import get_logger

        for note in cfg.notes:
            get_logger().info(f"note: {note}")
    return rank, group_size
