"""Data-parallel training with msrun on CPU: two workers end with the same weights as one worker
with the doubled batch, and only rank 0 writes the run directory."""
import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "engine", "dist_worker.py")


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
    if msrun is None:
        pytest.skip("msrun not found")
    common = dict(epochs=1, steps_per_epoch=3, eval_every=1, drop_path_rate=0.0, label_smoothing=0.0,
                  is_dynamic_loss_scale=False, loss_scale=1.0, warmup_length=0, lr_scheduler="constant_lr",
                  base_lr=0.002, val_num_samples=40)
    dist_out, single_out = tmp_path / "dist", tmp_path / "single"
    dist_out.mkdir()
    single_out.mkdir()
    dist_cfg = tiny_config("dist.yaml", batch_size=8, output_dir=str(dist_out / "runs"), **common)
    single_cfg = tiny_config("single.yaml", batch_size=16, output_dir=str(single_out / "runs"), **common)

    out = subprocess.run([msrun, "--worker_num=2", "--local_worker_num=2", f"--master_port={_free_port()}",
                          f"--log_dir={tmp_path / 'msrun_logs'}", "--join=True", WORKER, dist_cfg, str(dist_out)],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=540)
    logs = "\n".join(open(p).read()[-2000:] for p in glob.glob(str(tmp_path / "msrun_logs" / "*.log")))
    assert out.returncode == 0, logs
    ref = subprocess.run([sys.executable, WORKER, single_cfg, str(single_out)], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-2000:]

    w0 = np.load(dist_out / "weights_rank0.npz")
    w1 = np.load(dist_out / "weights_rank1.npz")
    single = np.load(single_out / "weights_rank0.npz")
    assert sorted(w0.files) == sorted(w1.files) == sorted(single.files)
    moved = 0.0
    for name in w0.files:
        np.testing.assert_array_equal(w0[name], w1[name], err_msg=f"ranks differ in {name}")
        np.testing.assert_allclose(w0[name], single[name], atol=2e-5, rtol=1e-4, err_msg=name)
        moved = max(moved, float(np.abs(w0[name]).max()))
    assert moved > 0

    # Only rank 0 wrote the run directory; rank 1 kept to its own log file.
    run_dir = dist_out / "runs" / "run"
    assert (run_dir / "last.ckpt").exists() and (run_dir / "metrics.csv").exists()
    assert (run_dir / "train.log").exists()
    assert not list(run_dir.glob("*rank1*.ckpt"))
    worker1 = open(tmp_path / "msrun_logs" / "worker_1.log").read()
    assert "run directory:" not in worker1  # rank 1 prints nothing to the console
    lines = [line for line in open(run_dir / "train.log") if "global batch" in line]
    assert lines and "16" in lines[0]
