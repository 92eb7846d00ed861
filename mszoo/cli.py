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

from mszoo.config import ConfigError
from mszoo.cpu.onednn import configure_cpu_kernels

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


def set_device(device_target="CPU", device_id=0, mode="pynative", cpu_kernels=True):
    """The one place that picks the device, the execution mode and (when launched so) data parallelism.

    ``cpu_kernels=False`` leaves oneDNN uncapped: for runs whose compute is not MindSpore's (onnxruntime,
    OpenVINO, which also reads ONEDNN_MAX_CPU_ISA and loses AVX-512 and bf16 under the cap)."""
    import mindspore as ms

    if not ms.hal.is_available(device_target):
        usable = [d for d in ("CPU", "GPU", "Ascend") if ms.hal.is_available(d)]
        raise DeviceUnavailable(f"device_target {device_target} is not available in this MindSpore {ms.__version__} "
                                f"installation (usable: {', '.join(usable) or 'none'}); use --device_target "
                                f"{usable[0] if usable else 'CPU'} or install MindSpore built for {device_target}")
    if device_target == "CPU":
        if cpu_kernels:
            configure_cpu_kernels()
        ms.set_device("CPU")
    else:
        ms.set_device(device_target, int(os.environ.get("DEVICE_ID", device_id)))
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    return init_distributed()


def start(cfg, mode=None, cpu_kernels=True):
    """Set the device of a resolved config (``device_target``, ``device_id``, ``mode`` unless given)."""
    return set_device(cfg.device_target, cfg.device_id, mode or cfg.mode, cpu_kernels=cpu_kernels)
