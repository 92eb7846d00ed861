"""Data-parallel runs: how many workers there are, what the ranks must agree on, and what changes when a
run resumes on another number of workers."""
import datetime

import numpy as np


def distributed_group_size():
    """Number of devices when ``mindspore.communication`` has been initialised by a launcher, else 1."""
    try:
        from mindspore.communication import GlobalComm, get_group_size

        if GlobalComm.INITED:
            return int(get_group_size())
    except Exception:  # not initialised / no backend: a single-device run
        pass
    return 1


def run_stamp(group_size):
    """``YYYYmmdd-HHMMSS`` of rank 0, the same on every rank: the default run directory name is one directory
    even when the ranks (on several machines) start in different seconds. The collective carries it as three
    float32 numbers, each exact below 2**24 (MindSpore's CPU AllReduce takes floats only)."""
    now = datetime.datetime.now()
    if group_size <= 1:
        return now.strftime("%Y%m%d-%H%M%S")
    from mindspore import Tensor, ops
    from mindspore.communication import get_rank

    parts = np.array([now.year, now.month * 100 + now.day, now.hour * 10000 + now.minute * 100 + now.second],
                     np.float32)
    if get_rank() != 0:
        parts[:] = 0
    year, month_day, time_of_day = (int(round(v)) for v in ops.AllReduce(ops.ReduceOp.SUM)(Tensor(parts)).asnumpy())
    return f"{year:04d}{month_day:04d}-{time_of_day:06d}"


def rescale_position(state, steps_per_epoch, global_batch, group_size):
    """Where a resumed run continues when its global batch changed (another number of workers, or batch size).

    Returns ``(epoch_step, global_step, note)``: the step of the interrupted epoch after the images it had
    already seen, and the global step at which the lr schedule is as far through the epochs as the saved run
    was; ``note`` says what changed (None when nothing did). Checkpoints saved before ``global_batch`` was
    recorded compare the epoch length only.
    """
    epochs_done, epoch_step = int(state["epochs_done"]), int(state.get("epoch_step", 0))
    old_steps = int(state.get("steps_per_epoch", steps_per_epoch))
    old_batch = int(state.get("global_batch", global_batch))
    if old_steps == steps_per_epoch and old_batch == global_batch:
        return epoch_step, int(state["global_step"]), None
    new_step = min(epoch_step * old_batch // global_batch, steps_per_epoch)
    workers = state.get("group_size")
    note = (f"resuming with another global batch: {old_batch} -> {global_batch} images per step"
            + (f" ({workers} -> {group_size} workers)" if workers is not None else "")
            + f", {old_steps} -> {steps_per_epoch} steps per epoch")
    if epoch_step:
        note += (f"; epoch {epochs_done + 1} continues at step {new_step} after the {epoch_step * old_batch} "
                 "images it had seen (not in the interrupted run's data order)")
    return new_step, epochs_done * steps_per_epoch + new_step, note + "; the lr schedule continues where it was"
