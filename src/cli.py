"""Shared entry-point plumbing: quiet MindSpore, device set-up, and clean exits on user errors.

Root scripts are thin: ``run(main)`` calls ``main()`` and turns a user error (bad config, missing
file, wrong checkpoint, corrupt data) into one line on stderr and a non-zero exit code, instead of a
traceback from deep inside MindSpore. Set ``MSZOO_DEBUG=1`` to see the full traceback.
"""
import os
import sys

os.environ.setdefault("GLOG_v", "3")  # before MindSpore is imported anywhere

from src.config import ConfigError  # noqa: E402

EXIT_CONFIG = 2
EXIT_USER = 1
EXIT_INTERRUPTED = 130


class NotImplementedYet(RuntimeError):
    """A feature whose issue is still open; the script says so and exits non-zero."""


def _one_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run(main, argv=None):
    """Run ``main(argv)`` and map known failures to exit codes with one clear message."""
    debug = os.environ.get("MSZOO_DEBUG", "") not in ("", "0")
    try:
        code = main(argv)
    except ConfigError as exc:
        if debug:
            raise
        print(f"config error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    except NotImplementedYet as exc:
        print(f"not implemented yet: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, FileNotFoundError, PermissionError, OSError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER
    return int(code or 0)


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


# oneDNN 3.10 (inside MindSpore 2.10) picks a reference (scalar) kernel for plain-layout NCHW
# convolutions when it may use AVX-512 ("jit_uni_ncsp:conv+ref:any" in ONEDNN_VERBOSE): a 4x4 patch
# embedding then takes ~300 ms instead of ~4 ms at batch 8. Capped at AVX2 it takes its jit GEMM path.
# The value is read when the first oneDNN kernel runs, so this must happen before any model runs.
ONEDNN_CPU_ISA = "AVX2"


def configure_cpu_kernels():
    """Cap oneDNN's instruction set for MindSpore's CPU kernels unless the user chose one."""
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", ONEDNN_CPU_ISA)


def set_device(device_target="CPU", device_id=0, mode="pynative"):
    """The one place that picks the device, the execution mode and (when launched so) data parallelism."""
    import mindspore as ms

    if device_target == "CPU":
        configure_cpu_kernels()
        ms.set_device("CPU")
    else:
        ms.set_device(device_target, int(os.environ.get("DEVICE_ID", device_id)))
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    return init_distributed()
