"""Data-parallel training with msrun on CPU: two workers end with the same weights as one worker with the
doubled batch even when clipping engages (gradients are averaged before clipping), validation counts every
val sample exactly once across ranks, and only rank 0 writes the run directory."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "engine", "dist_worker.py")
CLIP = 0.01


def _env():
    env = dict(os.environ, GLOG_v="3")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # msrun runs "python"
    return env


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(600)
def test_two_msrun_workers_match_one_worker_with_double_batch(tiny_config, tmp_path):
    msrun = shutil.which("msrun", path=_env()["PATH"])
    assert msrun is not None, "msrun (installed with mindspore) is not on PATH"
    # Plain SGD with a clip far below the gradient norm: every step is clipped, and the update is the clipped
    # direction scaled by the lr, so clipping each rank's gradient before the all-reduce (a mean of two
    # separately clipped vectors) would move the weights differently from one worker with the doubled batch.
    # 41 val samples: an odd count, so a sampler that pads shards or drops a sample shows in num_samples.
    common = dict(epochs=1, steps_per_epoch=3, eval_every=1, drop_path_rate=0.0, label_smoothing=0.0,
                  is_dynamic_loss_scale=False, loss_scale=1.0, warmup_length=0, lr_scheduler="constant_lr",
                  optimizer="sgd", momentum=0.0, weight_decay=0.0, base_lr=1.0, clip_grad_norm=CLIP,
                  use_clip_grad_norm=True, val_num_samples=41)
    dist_out, single_out = tmp_path / "dist", tmp_path / "single"
    dist_out.mkdir()
    single_out.mkdir()
    dist_cfg = tiny_config("dist.yaml", batch_size=8, output_dir=str(dist_out / "runs"), **common)
    single_cfg = tiny_config("single.yaml", batch_size=16, output_dir=str(single_out / "runs"), **common)

    out = subprocess.run([msrun, "--worker_num=2", "--local_worker_num=2", f"--master_port={_free_port()}",
                          f"--log_dir={tmp_path / 'msrun_logs'}", "--join=True", WORKER, dist_cfg, str(dist_out)],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=540)
    logs = "\n".join(Path(p).read_text()[-2000:] for p in glob.glob(str(tmp_path / "msrun_logs" / "*.log")))
    assert out.returncode == 0, logs
    ref = subprocess.run([sys.executable, WORKER, single_cfg, str(single_out)], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-2000:]

    # Clipping engaged on every step (the logged norm is the all-reduced one, before clipping).
    run_dir = dist_out / "runs" / "run"
    log = (run_dir / "train.log").read_text()
    norms = [float(v) for v in re.findall(r"grad_norm:\[([0-9.e+-]+)\]", log)]
    assert len(norms) == 3 and min(norms) > 10 * CLIP, norms
    # ... and it is the norm of the mean gradient, the single worker's (a sum over ranks would double it,
    # which the clipped update itself cannot show).
    single_log = (single_out / "runs" / "run" / "train.log").read_text()
    single_norms = [float(v) for v in re.findall(r"grad_norm:\[([0-9.e+-]+)\]", single_log)]
    assert norms == pytest.approx(single_norms, abs=2e-3), (norms, single_norms)

    init0, init1 = np.load(dist_out / "init_rank0.npz"), np.load(dist_out / "init_rank1.npz")
    w0, w1 = np.load(dist_out / "weights_rank0.npz"), np.load(dist_out / "weights_rank1.npz")
    single = np.load(single_out / "weights_rank0.npz")
    assert sorted(w0.files) == sorted(w1.files) == sorted(single.files) == sorted(init0.files)
    moved = 0.0
    for name in w0.files:
        np.testing.assert_array_equal(init0[name], init1[name], err_msg=f"ranks start from different {name}")
        np.testing.assert_array_equal(w0[name], w1[name], err_msg=f"ranks differ in {name}")
        np.testing.assert_allclose(w0[name], single[name], atol=1e-5, rtol=1e-4, err_msg=name)
        moved = max(moved, float(np.abs(w0[name] - init0[name]).max()))
    # 3 clipped SGD steps of lr 1 x norm 0.01 move some weight 100x more than the tolerance above.
    assert moved > 1e-3, moved

    # Validation summed the counts of both shards: every one of the 41 samples once, on both ranks.
    val0, val1 = (json.loads((dist_out / f"val_rank{r}.json").read_text()) for r in (0, 1))
    val_single = json.loads((single_out / "val_rank0.json").read_text())
    assert val0["num_samples"] == val1["num_samples"] == val_single["num_samples"] == 41
    for key in ("top1", "top5", "loss"):
        assert val0[key] == val1[key], key
        assert val0[key] == pytest.approx(val_single[key], abs=1e-3), key

    # Only rank 0 wrote the run directory; rank 1 kept to its own log file.
    assert (run_dir / "last.ckpt").exists() and (run_dir / "metrics.csv").exists()
    assert not list(run_dir.glob("*rank1*.ckpt"))
    worker1 = (tmp_path / "msrun_logs" / "worker_1.log").read_text()
    assert "run directory:" not in worker1  # rank 1 prints nothing to the console
    rank1_log = (run_dir / "train_rank1.log").read_text()
    assert "epoch: [1/1], step:[3/3]" in rank1_log and "epoch 1/1 done" in rank1_log
    assert "epoch: [1/1], step:[3/3]" not in worker1
    for text in (log, rank1_log):
        assert re.search(r"= global batch 16\b", text), text[-1500:]


def test_rescale_position_continues_after_the_images_already_seen_with_the_lr_at_the_same_point():
    from mszoo.engine.distributed import rescale_position

    # 2 workers x 8 = 16 images per step, 20 steps per epoch; stopped after 10 steps of epoch 3 (160 images).
    state = {"epochs_done": 2, "epoch_step": 10, "global_step": 50, "steps_per_epoch": 20, "global_batch": 16,
             "group_size": 2}
    step, global_step, note = rescale_position(state, steps_per_epoch=40, global_batch=8, group_size=1)
    assert (step, global_step) == (20, 100)  # 160 images = 20 steps of 8; 2.5 of 5 epochs, as before
    assert global_step / (5 * 40) == state["global_step"] / (5 * 20)
    assert "16 -> 8 images per step (2 -> 1 workers), 20 -> 40 steps per epoch" in note
    assert "epoch 3 continues at step 20 after the 160 images it had seen" in note
    # More workers: 7 steps of 8 (56 images) become 3 steps of 16 (48): never skip an image not yet seen.
    state = {"epochs_done": 0, "epoch_step": 7, "global_step": 7, "steps_per_epoch": 40, "global_batch": 8,
             "group_size": 1}
    assert rescale_position(state, steps_per_epoch=20, global_batch=16, group_size=2)[:2] == (3, 3)
    # The same global batch: the saved position as it is, and nothing to say.
    state = {"epochs_done": 1, "epoch_step": 5, "global_step": 25, "steps_per_epoch": 20, "global_batch": 16}
    assert rescale_position(state, steps_per_epoch=20, global_batch=16, group_size=1) == (5, 25, None)
