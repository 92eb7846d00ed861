"""Checkpoint files: round trip of the training state, atomic writes that survive a kill mid-write."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mszoo.engine.checkpoint import (
    load_training_checkpoint,
    remove_stale_tmp,
    resolve_resume_path,
    save_checkpoint_atomic,
)

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
    import os, resource, signal, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from mszoo.engine.checkpoint import save_checkpoint_atomic
    path, fraction = sys.argv[1], float(sys.argv[2])
    w = np.random.RandomState(0).randn(250_000).astype(np.float32)
    save_checkpoint_atomic(path, {{"w": w + 1, "n": np.array(1, np.int32)}}, {{"global_step": 1}})
    size = os.path.getsize(path)
    # The kernel ends the process (SIGXFSZ, default action) at the first write past the limit: a kill at a chosen
    # byte of the next save, wherever it writes from (Python ignores SIGXFSZ unless told otherwise).
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(size * fraction), resource.RLIM_INFINITY))
    print("limit", int(size * fraction), size, flush=True)
    save_checkpoint_atomic(path, {{"w": w + 2, "n": np.array(2, np.int32)}}, {{"global_step": 2}})
    print("saved 2", flush=True)
""")


@pytest.mark.parametrize("fraction", [0.0005, 0.5, 0.9999], ids=["header", "middle", "last-bytes"])
def test_a_kill_at_a_chosen_byte_of_the_write_leaves_the_previous_checkpoint_whole(tmp_path, fraction):
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=ROOT))
    path = str(tmp_path / "last.ckpt")
    proc = subprocess.run([sys.executable, str(script), path, str(fraction)], capture_output=True, text=True,
                          env=dict(os.environ, GLOG_v="3"), timeout=120)
    assert proc.returncode == -signal.SIGXFSZ, proc.stdout + proc.stderr  # killed inside the second write
    limit = int(proc.stdout.split()[1])
    assert "saved 2" not in proc.stdout
    partial = [name for name in os.listdir(tmp_path) if name not in ("last.ckpt", "writer.py")]
    assert len(partial) == 1 and os.path.getsize(tmp_path / partial[0]) == limit  # cut at the chosen byte
    ckpt = load_training_checkpoint(path)  # the first save, whole
    assert int(ckpt.tensors["n"]) == 1 and ckpt.train_state["global_step"] == 1
    np.testing.assert_array_equal(ckpt.tensors["w"], np.random.RandomState(0).randn(250_000).astype(np.float32) + 1)
    remove_stale_tmp(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["last.ckpt", "writer.py"]
