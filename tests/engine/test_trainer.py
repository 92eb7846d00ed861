"""train.py's engine in-process: run directory outputs, exact resume, NaN stop, steps_per_epoch cap."""
import copy
import csv
import os
import re
import signal

import numpy as np
import pytest

from mszoo.config import parse_config
from mszoo.engine.checkpoint import load_training_checkpoint
from mszoo.engine.reporting import METRICS_FIELDS, format_step_line
from mszoo.engine.trainer import TrainingDiverged, train


def run(config, *argv, after_step=None):
    cfg, _ = parse_config(["--config", config, *argv])
    return train(cfg, after_step=after_step)


def test_step_log_line_has_the_seed_format():
    line = format_step_line(3, 300, 100, 1251, 6.8123, 6.9007, 412.34, 0.00051)
    assert line == "epoch: [  3/300], step:[ 100/1251], loss:[6.812/6.901], time:[412.3ms], lr:[0.00051]"
    extra = format_step_line(1, 2, 1, 9, 1.0, 1.0, 1.0, 1e-3, grad_norm=2.5, scale=512.0, overflows=3)
    assert extra.endswith("lr:[0.001], grad_norm:[2.500], scale:[512], overflow_skipped:[3]")


def _record_val_iterators(monkeypatch):
    """The ``num_epochs`` of every iterator the trainer's validation loader makes."""
    import mszoo.engine.trainer as trainer_module

    made = []

    class Recording(trainer_module.KeptLoader):
        def __init__(self, data, passes=1):
            super().__init__(data, passes)
            make = data.create_tuple_iterator
            data.create_tuple_iterator = lambda **kw: (made.append(kw["num_epochs"]), make(**kw))[1]

    monkeypatch.setattr(trainer_module, "KeptLoader", Recording)
    return made


def test_resume_after_a_stop_at_step_k_equals_an_uninterrupted_run(tiny_config, tmp_path, graph_mode, monkeypatch):
    import mszoo.engine.reporting as reporting

    drawn, draw = [], reporting.plot_curves
    monkeypatch.setattr(reporting, "plot_curves", lambda rows, path: (drawn.append(len(rows)), draw(rows, path)))
    val_iterators = _record_val_iterators(monkeypatch)
    config = tiny_config(with_ema=True, ema_decay=0.9, loss_scale_window=2)
    # uninterrupted: 2 epochs x 3 steps
    cfg, _ = parse_config(["--config", config, "--run_name", "full"])
    before = copy.deepcopy(cfg)
    assert train(cfg) == 0
    assert drawn == [1, 2]  # the final epoch's curves are drawn, however soon after the first epoch's
    assert val_iterators == [2]  # both validations from one iterator: its workers start once
    assert cfg == before and cfg._sources == before._sources  # the caller's config is left as it was
    full_dir = tmp_path / "out" / "full"
    assert {"config.yaml", "train.log", "metrics.csv", "curves.png", "last.ckpt", "best.ckpt", "epoch_001.ckpt",
            "epoch_002.ckpt"} <= set(os.listdir(full_dir))
    with open(full_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == METRICS_FIELDS
    assert [int(r["epoch"]) for r in rows] == [1, 2] and [int(r["step"]) for r in rows] == [3, 6]
    assert all(r["val_top1"] != "" for r in rows)

    # interrupted after global step 4 (epoch 2, step 1), then resumed from the run directory
    def stop_at_4(trainer):
        if trainer.global_step == 4:
            trainer.stop.request(signal.SIGTERM)

    assert run(config, "--run_name", "cut", after_step=stop_at_4) == 143
    cut_dir = tmp_path / "out" / "cut"
    state = load_training_checkpoint(str(cut_dir / "last.ckpt")).train_state
    assert (state["epochs_done"], state["epoch_step"], state["global_step"]) == (1, 1, 4)
    # The rest comes from the checkpoint's saved config. Two worker processes instead of one thread: each batch
    # seeds its own augmentation (random crops here), so the resumed epoch sees the same images.
    cfg, _ = parse_config(["--resume", str(cut_dir), "--num_parallel_workers", "2"])
    val_iterators.clear()
    assert train(cfg) == 0
    assert val_iterators == [1]  # one validation left

    full = load_training_checkpoint(str(full_dir / "last.ckpt"))
    resumed = load_training_checkpoint(str(cut_dir / "last.ckpt"))
    assert set(full.tensors) == set(resumed.tensors)
    assert any(k.startswith("ema.") for k in full.tensors) and any(k.startswith("optimizer.") for k in full.tensors)
    for name, value in full.tensors.items():  # weights, Adam moments, EMA, loss-scale state
        np.testing.assert_allclose(resumed.tensors[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    assert resumed.train_state["global_step"] == full.train_state["global_step"] == 6
    assert float(full.tensors["loss_scale.scale"]) > 1024.0  # the dynamic scale grew and was restored
    with open(cut_dir / "metrics.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2]
    assert resumed.class_names == [str(i) for i in range(10)]


def test_resume_mid_epoch_with_another_global_batch_skips_the_images_already_seen(tiny_config, tmp_path, graph_mode):
    # 64 train images: 4 steps of 16. Stopped after 2 steps (32 images seen), resumed with batches of 8 (what
    # one worker instead of two gives): 8 steps per epoch, so epoch 1 continues at step 4 and runs 4 more.
    config = tiny_config(train_num_samples=64, steps_per_epoch=None, batch_size=16, epochs=2)

    def stop_at_2(trainer):
        if trainer.global_step == 2:
            trainer.stop.request(signal.SIGTERM)

    assert run(config, after_step=stop_at_2) == 143
    run_dir = tmp_path / "out" / "run"
    state = load_training_checkpoint(str(run_dir / "last.ckpt")).train_state
    assert (state["epochs_done"], state["epoch_step"], state["steps_per_epoch"]) == (0, 2, 4)
    cfg, _ = parse_config(["--resume", str(run_dir), "--batch_size", "8"])
    assert train(cfg) == 0
    log = (run_dir / "train.log").read_text()
    assert "resumed at epoch 1, step 4/8 (global step 4)" in log, log[-2000:]
    resumed = log[log.index("resumed at epoch 1"):]
    assert re.findall(r"epoch: \[1/2\], step:\[(\d+)/8\]", resumed) == ["5", "6", "7", "8"]
    state = load_training_checkpoint(str(run_dir / "last.ckpt")).train_state
    assert (state["epochs_done"], state["global_step"]) == (2, 16)


def test_a_stop_asked_between_two_epochs_saves_before_the_next_epoch_starts(tiny_config, tmp_path, graph_mode):
    # Asked after epoch 1's checkpoint: no step of epoch 2 (whose pipeline start can take seconds) runs first.
    def stop_after_epoch_1(trainer, epoch, val):
        trainer.stop.request(signal.SIGTERM)

    cfg, _ = parse_config(["--config", tiny_config()])
    assert train(cfg, after_epoch=stop_after_epoch_1) == 143
    state = load_training_checkpoint(str(tmp_path / "out" / "run" / "last.ckpt")).train_state
    assert (state["epochs_done"], state["epoch_step"], state["global_step"]) == (1, 0, 3)


def test_ckpt_save_every_step_writes_last_ckpt_mid_epoch(tiny_config, tmp_path, graph_mode):
    # The T2T readme's ckpt_save_every_step: last.ckpt after global steps 2 and 4 (mid-epoch), besides epoch ends.
    seen = {}

    def record(trainer):  # runs before that step's own save: shows what the previous steps wrote
        path = os.path.join(trainer.run_dir, "last.ckpt")
        state = load_training_checkpoint(path).train_state if os.path.isfile(path) else None
        seen[trainer.global_step] = state and (state["epochs_done"], state["epoch_step"], state["global_step"])

    assert run(tiny_config(epochs=2, steps_per_epoch=3), "--ckpt_save_every_step", "2", after_step=record) == 0
    assert seen == {1: None, 2: None, 3: (0, 2, 2), 4: (1, 0, 3), 5: (1, 1, 4), 6: (1, 1, 4)}


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path, graph_mode):
    # Epoch 1 trains normally; from epoch 2 the step schedule multiplies the lr by 1e30.
    config = tiny_config(optimizer="sgd", lr_scheduler="step_lr", lr_adjust=1, lr_gamma=1e30, warmup_length=0,
                         min_lr=0.0, use_clip_grad_norm=False, epochs=3, steps_per_epoch=4)
    with pytest.raises(TrainingDiverged, match=r"loss is (nan|inf) at epoch 2.*last good checkpoint .*last\.ckpt"):
        run(config)
    last = load_training_checkpoint(str(tmp_path / "out" / "run" / "last.ckpt"))
    assert last.train_state["epochs_done"] == 1 and last.train_state["global_step"] == 4
    assert all(np.isfinite(v).all() for v in last.tensors.values())
    log = (tmp_path / "out" / "run" / "train.log").read_text()
    assert "training diverged" in log


def test_mixup_and_accumulation_train_end_to_end_and_a_run_directory_is_never_reused(tiny_config, tmp_path,
                                                                                   graph_mode):
    from mszoo.config import ConfigError

    config = tiny_config(epochs=1, steps_per_epoch=2, accumulation_steps=2, mixup=0.8, cutmix=1.0)
    assert run(config) == 0
    state = load_training_checkpoint(str(tmp_path / "out" / "run" / "last.ckpt")).train_state
    assert state["global_step"] == 2 and state["steps_per_epoch"] == 2
    with pytest.raises(ConfigError, match="--resume"):
        run(config)


@pytest.mark.parametrize("train_interp, expected", [(None, "bicubic"), ("random", "random")])
def test_train_interpolation_applies_to_training_only(train_interp, expected, tiny_config):
    from mszoo.resolve import data_config, fill_preprocessing

    extra = [] if train_interp is None else ["--train_interpolation", train_interp]
    cfg, _ = parse_config(["--config", tiny_config(dataset="imagefolder"), "--interpolation", "bicubic", *extra])
    fill_preprocessing(cfg)  # as the trainer does: mean/std/crop_pct from the model's cfg
    train, val = data_config(cfg, is_training=True), data_config(cfg, is_training=False)
    assert (train.interpolation, val.interpolation) == (expected, "bicubic")
    assert train.is_training and not val.is_training and train.mean == val.mean == tuple(cfg.mean)


def _sigint_run(tmp, digits_cache):
    """train.py in its own process gets a real SIGINT (Ctrl-C) during epoch 1, then ``--resume`` runs.

    A subprocess, as a user runs it: train.py takes the signals with sigwait (mszoo/engine/interrupt.py)."""
    import shutil
    import subprocess
    import sys

    import yaml

    from tests.engine.conftest import ROOT, TINY_TRAIN

    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump(dict(TINY_TRAIN, data_url=digits_cache, output_dir=str(tmp / "out"),
                                          epochs=2, steps_per_epoch=40)))
    env = dict(os.environ, GLOG_v="3", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "train.py", "--config", str(config)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("epoch: [1/2], step:[ 3/40]"):
            proc.send_signal(signal.SIGINT)
            break
    out, _ = proc.communicate(timeout=180)
    run_dir = tmp / "out" / "run"
    shutil.copy(run_dir / "last.ckpt", tmp / "stopped.ckpt")  # read by the test (MindSpore in the main thread only)
    resume = subprocess.run([sys.executable, "train.py", "--resume", str(run_dir)], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=300)
    return dict(code=proc.returncode, out="".join(lines) + out, stopped=tmp / "stopped.ckpt", resume=resume,
                run_dir=run_dir)


@pytest.fixture(scope="module", autouse=True)
def _sigint_run_meanwhile(tmp_path_factory, digits_cache):
    """The SIGINT run (processes, mostly on one core) starts with this module, beside its in-process tests."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1)
    future = pool.submit(_sigint_run, tmp_path_factory.mktemp("sigint"), digits_cache)
    yield future
    pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def sigint_run(_sigint_run_meanwhile):
    run = _sigint_run_meanwhile.result()
    return dict(run, state=load_training_checkpoint(str(run["stopped"])).train_state)


def test_sigint_saves_last_ckpt_at_the_current_step_and_resume_finishes(sigint_run):
    state = sigint_run["state"]
    assert state["epochs_done"] == 0 and 3 <= state["epoch_step"] < 40, (state, sigint_run["out"][-2000:])
    assert f"saved {sigint_run['run_dir'] / 'last.ckpt'}" in sigint_run["out"]
    resume = sigint_run["resume"]
    assert resume.returncode == 0, resume.stdout[-2000:] + resume.stderr[-2000:]
    assert f"resumed at epoch 1, step {state['epoch_step']}/40" in resume.stdout
    final = load_training_checkpoint(str(sigint_run["run_dir"] / "last.ckpt")).train_state
    assert (final["epochs_done"], final["global_step"]) == (2, 80)


def test_sigint_is_reported_as_sigint_and_exits_130(sigint_run):
    # MindSpore installs its own C-level SIGINT handler around every graph run, which sends the process SIGTERM;
    # train.py blocks both signals before any thread exists and takes them with sigwait, so no handler runs.
    assert "stopped by SIGINT" in sigint_run["out"], sigint_run["out"][-1500:]
    assert sigint_run["code"] == 130


def test_lr_scale_batch_scales_the_lr_the_step_uses_and_logs_the_rule(tiny_config, tmp_path, monkeypatch,
                                                                      graph_mode):
    from mszoo.engine.train_step import TrainStep

    used = []
    real_run = TrainStep.run
    monkeypatch.setattr(TrainStep, "run", lambda self, micro, lr: used.append(float(lr)) or real_run(self, micro, lr))
    config = tiny_config(epochs=1, steps_per_epoch=2, batch_size=16, base_lr=0.003, lr_scale_batch=8,
                         lr_scheduler="constant_lr", warmup_length=0)
    assert run(config) == 0
    assert used == [pytest.approx(0.006), pytest.approx(0.006)]  # 0.003 x 16 / 8
    log = (tmp_path / "out" / "run" / "train.log").read_text()
    assert "lr scaling rule: base_lr 0.003 x global batch 16 / lr_scale_batch 8 = 0.006" in log
    assert "lr:[0.006]" in log


def test_resume_loads_the_weights_by_the_one_rule_and_names_a_weight_the_model_lacks(tiny_config, tmp_path):
    from mszoo.engine.checkpoint import save_checkpoint_atomic
    from mszoo.engine.trainer import Trainer
    from mszoo.logger import remove_log_files
    from mszoo.models.loading import CheckpointError

    trainer = Trainer(parse_config(["--config", tiny_config()])[0]).setup()  # a run's checkpoint, no step compiled
    trainer.save_last()
    remove_log_files()
    path = str(tmp_path / "out" / "run" / "last.ckpt")
    ckpt = load_training_checkpoint(path)
    save_checkpoint_atomic(path, dict(ckpt.tensors, **{"blocks.9.extra.weight": np.zeros(3, np.float32)}),
                           train_state=ckpt.train_state, config_text=ckpt.config_text, class_names=ckpt.class_names,
                           record=ckpt.record)
    cfg, _ = parse_config(["--resume", str(tmp_path / "out" / "run"), "--epochs", "2"])
    with pytest.raises(CheckpointError, match=r"^resume from .*last\.ckpt does not fit the model: unexpected "
                                              r"blocks\.9\.extra\.weight$"):
        train(cfg)


def test_validation_runs_twins_peg_on_its_fused_kernel(tiny_config):
    """The trainer gives its evaluation copy the fused kernels: Twins' PEG is the one cell that uses its kernel in
    evaluation too (``in_inference``), so a training process, which leaves oneDNN uncapped, never validates with
    the NCHW depthwise convolution (a reference kernel on AVX-512)."""
    from mszoo.cpu.kernels import FusedKernelUser
    from mszoo.engine.trainer import Trainer
    from mszoo.logger import remove_log_files
    from mszoo.models.layers import PosConv

    trainer = Trainer(parse_config(["--config", tiny_config()])[0]).setup()
    remove_log_files()
    users = [cell for _, cell in trainer.eval_model.cells_and_names() if isinstance(cell, FusedKernelUser)]
    assert users and all(cell.fused is not None for cell in users)
    assert {type(cell) for cell in users if cell.in_inference} == {PosConv}
