"""Checkpoint files: round trip of the training state, atomic writes that survive a kill mid-write."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mszoo.engine.checkpoint import (load_training_checkpoint, remove_stale_tmp, resolve_resume_path,
                                   save_checkpoint_atomic)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_round_trip_keeps_tensors_state_config_and_class_names(tmp_path):
    path = str(tmp_path / "last.ckpt")
    tensors = {"head.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "optimizer.step": np.array(7, np.int32),
               "ema.head.weight": np.ones((2, 3), np.float32)}
    state = {"epochs_done": 3, "epoch_step": 5, "global_step": 41, "best": [[97.5, 3, "best.ckpt"]]}
    save_checkpoint_atomic(path, tensors, state, "arch: twins_pcpvt_small\nepochs: 5\n", ["zero", "one"])
    ckpt = load_training_checkpoint(path)
    np.testing.assert_array_equal(ckpt.tensors["head.weight"], tensors["head.weight"])
    assert int(ckpt.tensors["optimizer.step"]) == 7
    assert ckpt.group("ema") == {"head.weight": pytest.approx(np.ones((2, 3)))}
    assert ckpt.train_state["epoch_step"] == 5 and ckpt.train_state["best"] == [[97.5, 3, "best.ckpt"]]
    assert ckpt.config_text.startswith("arch: twins_pcpvt_small")
    assert ckpt.class_names == ["zero", "one"]
    assert os.listdir(tmp_path) == ["last.ckpt"]  # no temporary file left behind
    assert os.access(path, os.W_OK)  # an ordinary file, not MindSpore's read-only 0400


def test_resume_path_accepts_a_run_directory_or_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no last.ckpt"):
        resolve_resume_path(str(tmp_path))
    save_checkpoint_atomic(str(tmp_path / "last.ckpt"), {"w": np.zeros(2, np.float32)})
    assert resolve_resume_path(str(tmp_path)) == str(tmp_path / "last.ckpt")
    assert resolve_resume_path(str(tmp_path / "last.ckpt")) == str(tmp_path / "last.ckpt")
    with pytest.raises(FileNotFoundError):
        resolve_resume_path(str(tmp_path / "missing.ckpt"))


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from mszoo.engine.checkpoint import save_checkpoint_atomic
    path = sys.argv[1]
    big = np.random.RandomState(0).randn(6_000_000).astype(np.float32)  # ~24 MB: a write takes a while
    for i in range(1, 1000):
        print("writing", i, flush=True)
        save_checkpoint_atomic(path, {{"w": big + i, "n": np.array(i, np.int32)}}, {{"global_step": i}})
        print("saved", i, flush=True)
""")


@pytest.mark.parametrize("delay", [0.0, 0.05])
def test_a_kill_while_writing_never_corrupts_last_ckpt(tmp_path, delay):
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=ROOT))
    path = str(tmp_path / "last.ckpt")
    env = dict(os.environ, GLOG_v="3")
    proc = subprocess.Popen([sys.executable, str(script), path], stdout=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stdout:
            if line.strip() == "writing 3":  # two complete files written, the third in progress
                if delay:
                    import time

                    time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    ckpt = load_training_checkpoint(path)  # loads: either the old or the new complete file
    n = int(ckpt.tensors["n"])
    assert n in (2, 3) and ckpt.train_state["global_step"] == n
    np.testing.assert_allclose(ckpt.tensors["w"][:3], np.random.RandomState(0).randn(3).astype(np.float32) + n,
                               rtol=1e-6)
    remove_stale_tmp(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["last.ckpt", "writer.py"]
