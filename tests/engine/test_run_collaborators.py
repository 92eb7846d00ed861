"""The trainer's collaborators on their own: checkpoint rotation, the signal stop, metric files, step timer."""
import csv
import faulthandler
import logging
import os
import signal
import threading
import time

import pytest

from mszoo.engine.checkpoint_manager import CheckpointManager
from mszoo.engine.interrupt import SignalStop
from mszoo.engine.reporting import METRICS_FIELDS, MetricsLogger, StepTimer, format_epoch_line

# ------------------------------------------------------------------------------------ CheckpointManager

def _run_epochs(manager, tmp_path, top1s):
    last = tmp_path / "last.ckpt"

    def write_last(epoch):  # the file's content records the epoch it was written at
        last.write_text(str(epoch))
        return str(last)

    for epoch, top1 in enumerate(top1s, start=1):
        assert manager.end_epoch(epoch, top1, lambda epoch=epoch: write_last(epoch)) == str(last)


def test_keeps_the_last_n_epoch_checkpoints_and_the_best_n_by_top1(tmp_path):
    manager = CheckpointManager(str(tmp_path), epochs=5, keep_last=2, keep_best=2)
    _run_epochs(manager, tmp_path, [50.0, 70.0, 60.0, 65.0, 90.0])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["best.ckpt", "best_epoch_002_top1_70.00.ckpt", "best_epoch_005_top1_90.00.ckpt",
                     "epoch_004.ckpt", "epoch_005.ckpt", "last.ckpt"]
    assert (tmp_path / "best.ckpt").read_text() == "5"
    assert (tmp_path / "best_epoch_002_top1_70.00.ckpt").read_text() == "2"
    assert manager.best == [[90.0, 5, "best_epoch_005_top1_90.00.ckpt"], [70.0, 2, "best_epoch_002_top1_70.00.ckpt"]]


def test_one_best_is_best_ckpt_and_unvalidated_epochs_never_rank(tmp_path):
    manager = CheckpointManager(str(tmp_path), epochs=1000, keep_last=1, keep_best=1)
    _run_epochs(manager, tmp_path, [50.0, None, 40.0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt", "epoch_0003.ckpt", "last.ckpt"]
    assert (tmp_path / "best.ckpt").read_text() == "1"
    assert manager.best == [[50.0, 1, "best.ckpt"]]


def test_the_best_list_is_written_with_last_ckpt_and_a_resumed_manager_keeps_rotating(tmp_path):
    manager = CheckpointManager(str(tmp_path), epochs=4, keep_last=0, keep_best=2)
    seen = []

    def write_last():
        seen.append([list(b) for b in manager.best])
        (tmp_path / "last.ckpt").write_text("1")
        return str(tmp_path / "last.ckpt")

    manager.end_epoch(1, 60.0, write_last)
    assert seen == [[[60.0, 1, "best_epoch_001_top1_60.00.ckpt"]]]  # ranked before last.ckpt is written
    resumed = CheckpointManager(str(tmp_path), epochs=4, keep_last=0, keep_best=1, best=manager.best)
    assert resumed.best == manager.best and resumed.best is not manager.best


def test_non_main_ranks_write_last_only_through_the_callback(tmp_path):
    manager = CheckpointManager(str(tmp_path), epochs=2, keep_last=1, keep_best=1, is_main=False)
    manager.end_epoch(1, 10.0, lambda: str(tmp_path / "last.ckpt"))
    assert list(tmp_path.iterdir()) == [] and manager.best == [[10.0, 1, "best.ckpt"]]


def test_timed_saves_are_due_after_the_interval(tmp_path):
    assert not CheckpointManager(str(tmp_path), epochs=1).save_due(1)  # 0: off
    manager = CheckpointManager(str(tmp_path), epochs=1, save_every_seconds=0.05)
    assert not manager.save_due(1)
    time.sleep(0.1)
    assert manager.save_due(2)
    manager.mark_saved()
    assert not manager.save_due(3)


def test_step_saves_are_due_every_n_steps(tmp_path):
    manager = CheckpointManager(str(tmp_path), epochs=1, save_every_steps=3)
    assert [step for step in range(1, 10) if manager.save_due(step)] == [3, 6, 9]


# ------------------------------------------------------------------------------------------- SignalStop

def _stop(saves, log=None):
    return SignalStop(save=lambda: saves.append(1) or "/run/last.ckpt", describe=lambda: "(epoch 1, step 2/3)",
                      state_lock=threading.RLock(), logger=log or logging.getLogger("test-stop"))


def test_a_requested_stop_saves_once_and_returns_the_signal_exit_code(caplog):
    saves = []
    stop = _stop(saves)
    assert not stop.requested
    stop.request(signal.SIGTERM)
    stop.request(signal.SIGINT)  # the first request wins
    with caplog.at_level(logging.INFO, logger="test-stop"):
        assert stop.exit() == 143
        assert stop.exit() == 143
    assert saves == [1]  # saved once, not again
    assert "stopped by SIGTERM: saved /run/last.ckpt (epoch 1, step 2/3)" in caplog.text


def test_a_real_sigint_sets_the_request_and_the_handlers_are_restored():
    saves = []
    stop = _stop(saves)
    before = signal.getsignal(signal.SIGINT)
    stop.install()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.time() + 5
        while not stop.requested and time.time() < deadline:
            time.sleep(0.01)
        assert stop.signum == signal.SIGINT and stop.from_os
        assert stop.exit() == 130 and saves == [1]  # SIGINT returns (only SIGTERM ends the process)
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("held", [False, True], ids=["train-called-from-code", "train.py"])
def test_a_real_sigint_ends_train_py_right_after_the_save_and_returns_from_a_train_call(monkeypatch, held):
    """train.py (signals held) does not wait for MindSpore's clean-up of loader workers still prefetching."""
    import mszoo.engine.interrupt as interrupt

    ended = []
    monkeypatch.setattr(interrupt, "_waiter", object() if held else None)
    monkeypatch.setattr(interrupt.os, "_exit", ended.append)
    monkeypatch.setattr(faulthandler, "dump_traceback_later", lambda *args, **kwargs: None)  # its save guard
    saves = []
    stop = _stop(saves)
    stop.from_os = True
    stop.request(signal.SIGINT)
    assert stop.exit() == 130 and saves == [1]
    assert ended == ([130] if held else [])


def test_install_outside_the_main_thread_does_nothing():
    stop = _stop([])
    thread = threading.Thread(target=stop.install)
    thread.start()
    thread.join()
    assert stop._wakeup is None and stop._old_handlers == {}
    stop.restore()


# ----------------------------------------------------------------------------------- metrics and timer

def _row(epoch, val=True):
    return {"epoch": epoch, "step": 3 * epoch, "lr": 0.001, "train_loss": 2.0 / epoch,
            "val_top1": 50.0 + epoch if val else None, "val_top5": 90.0 if val else None,
            "val_loss": 1.0 if val else None, "img_s": 100.0, "time": 1.5}


def test_metrics_logger_writes_csv_and_curves_and_a_resume_drops_later_rows(tmp_path):
    metrics = MetricsLogger(str(tmp_path), logging.getLogger("test-metrics"))
    metrics.start(0)
    for epoch in (1, 2, 3):
        metrics.log_epoch(_row(epoch, val=epoch != 2))
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == METRICS_FIELDS and [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert rows[1]["val_top1"] == "" and rows[2]["val_top1"] == "53"
    assert (tmp_path / "curves.png").stat().st_size > 0
    MetricsLogger(str(tmp_path), logging.getLogger("test-metrics")).start(1)
    with open(tmp_path / "metrics.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1"]


def test_curves_are_redrawn_after_the_first_and_final_rows_and_otherwise_at_most_every_30_seconds(tmp_path,
                                                                                                 monkeypatch):
    import mszoo.engine.reporting as reporting

    drawn = []
    monkeypatch.setattr(reporting, "plot_curves", lambda rows, path: drawn.append(len(rows)))
    now = [0.0]
    metrics = MetricsLogger(str(tmp_path), logging.getLogger("test-metrics"), clock=lambda: now[0])
    for epoch, seconds in ((1, 0.0), (2, 3.0), (3, 29.9), (4, 30.0), (5, 33.0), (6, 36.0)):
        now[0] = seconds
        metrics.log_epoch(_row(epoch), final=epoch == 6)
    assert drawn == [1, 4, 6]  # rows written when drawn: the first, 30 s after it, and the final one
    with open(tmp_path / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == 6  # every row is in the csv


def test_a_plotting_error_is_a_warning_and_other_ranks_write_nothing(tmp_path, monkeypatch, caplog):
    import mszoo.engine.reporting as reporting

    monkeypatch.setattr(reporting, "plot_curves", lambda rows, path: 1 / 0)
    with caplog.at_level(logging.WARNING, logger="test-metrics"):
        MetricsLogger(str(tmp_path), logging.getLogger("test-metrics")).log_epoch(_row(1))
    assert "could not draw curves.png" in caplog.text and (tmp_path / "metrics.csv").is_file()
    other = tmp_path / "rank1"
    other.mkdir()
    MetricsLogger(str(other), logging.getLogger("test-metrics"), enabled=False).log_epoch(_row(1))
    assert list(other.iterdir()) == []


def test_step_timer_throughput_is_per_epoch_and_skips_the_compile_step():
    timer = StepTimer()
    timer.start_epoch()
    time.sleep(0.02)
    timer.tick(8, exclude=True)  # the first step of the process compiles
    assert timer.img_s == 0.0
    time.sleep(0.02)
    timer.tick(8)
    assert 0 < timer.img_s < 8 / 0.015
    assert timer.pop_window_ms() >= 20.0 and timer.pop_window_ms() == 0.0
    timer.start_epoch()
    assert timer.img_s == 0.0


def test_epoch_line():
    line = format_epoch_line(2, 5, 1.23456, {"top1": 50.0, "top5": 90.0, "loss": 1.5}, [[60.0, 1, "b"]], 12.34,
                             3.21, "/run/last.ckpt")
    assert line == ("epoch 2/5 done: train loss 1.2346, val top-1 50.00, top-5 90.00, loss 1.5000 (best top-1 "
                    "60.00 at epoch 1), 12.3 img/s, 3.2s; saved last.ckpt")
    assert format_epoch_line(1, 5, 1.0, None, [], 1.0, 1.0, "x").startswith("epoch 1/5 done: train loss 1.0000, 1.0")
    with pytest.raises(TypeError):
        format_epoch_line(1, 5, 1.0, None, [], 1.0, 1.0)
