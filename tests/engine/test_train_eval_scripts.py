"""train.py / eval.py as processes: SIGTERM saves a loadable checkpoint and resume finishes; eval.py output."""
import ast
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from mszoo.engine.checkpoint import load_training_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def script(name, *args, **popen):
    env = dict(os.environ, GLOG_v="3", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, os.path.join(ROOT, name), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=popen.pop("cwd", None), **popen)


STEP_LINE = re.compile(r"^epoch: \[\s*(\d+)/\d+\], step:\[\s*(\d+)/\s*(\d+)\]")
STOPPED = re.compile(r"stopped by (SIG\w+): saved \S+ \(epoch (\d+), step (\d+)/\d+\)")


def stop_and_measure(proc, when, sig, group):
    """Send ``sig`` (to the process group or the main process) at the first line ``when(line)`` accepts;
    returns (output, seconds from the signal to the exit, the last (epochs_done, epoch_step) logged before it)."""
    lines, logged = [], None
    for line in proc.stdout:
        lines.append(line)
        m = STEP_LINE.match(line)
        if m:
            epoch, step, steps = (int(g) for g in m.groups())
            logged = (epoch, 0) if step == steps else (epoch - 1, step)
        if when(line):
            (os.killpg if group else os.kill)(proc.pid, sig)
            break
    sent = time.monotonic()
    out, _ = proc.communicate(timeout=120)
    return "".join(lines) + out, time.monotonic() - sent, logged


def test_stop_signals_exit_with_their_code_within_30s_save_the_stopped_step_and_resume_there(tiny_config, tmp_path):
    # With the loader's 2 worker processes: a process-group SIGTERM right after an epoch's save (workers killed
    # mid-pipeline lost the epoch, or hung on the GIL), then SIGTERM and SIGINT to the main process mid-epoch
    # (MindSpore's own SIGINT handler turned SIGINT into SIGTERM, exit 143). Each run resumes the previous one.
    config = tiny_config(epochs=3, steps_per_epoch=20, num_parallel_workers=2)
    run_dir = tmp_path / "out" / "run"
    stops = [(True, signal.SIGTERM, 143, lambda line: "; saved last.ckpt" in line),
             (False, signal.SIGTERM, 143, lambda line: STEP_LINE.match(line) is not None),
             (False, signal.SIGINT, 130, lambda line: STEP_LINE.match(line) is not None)]
    previous = None
    for group, sig, code, when in stops:
        args = ("--resume", str(run_dir)) if previous else ("--config", config)
        proc = script("train.py", *args, start_new_session=True)
        out, seconds, logged = stop_and_measure(proc, when, sig, group)
        assert proc.returncode == code and seconds < 30, (seconds, out)
        assert "Traceback" not in out, out
        state = load_training_checkpoint(str(run_dir / "last.ckpt")).train_state
        saved = (state["epochs_done"], state["epoch_step"])
        said = STOPPED.search(out)
        assert said and said.group(1) == signal.Signals(sig).name, out
        assert (int(said.group(2)) - 1, int(said.group(3))) == saved and saved >= logged, out
        if previous:
            assert f"resumed at epoch {previous[0] + 1}, step {previous[1]}/20" in out, out
        previous = saved
    proc = script("train.py", "--resume", str(run_dir))
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert f"resumed at epoch {previous[0] + 1}, step {previous[1]}/20" in out
    state = load_training_checkpoint(str(run_dir / "last.ckpt")).train_state
    assert (state["epochs_done"], state["global_step"]) == (3, 60)


def test_eval_script_prints_one_results_line_and_writes_json(tiny_config, tmp_path):
    config = tiny_config(epochs=1, steps_per_epoch=3, val_num_samples=100, batch_size=16)
    proc = script("train.py", "--config", config)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    ckpt = tmp_path / "out" / "run" / "best.ckpt"
    result_file = tmp_path / "results.json"
    proc = script("eval.py", "--pretrained", str(ckpt), "--output", str(result_file))
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    lines = [line for line in out.splitlines() if line.startswith("eval results: ")]
    assert len(lines) == 1, out
    assert re.fullmatch(r"eval results: \{'loss': [0-9.e-]+, 'top1': [0-9.]+, 'top5': [0-9.]+, "
                        r"'num_samples': \d+\}", lines[0])
    printed = ast.literal_eval(lines[0][len("eval results: "):])
    assert printed == json.loads(result_file.read_text())
    assert printed["num_samples"] == 100  # 6 full batches of 16 and the last partial one: every sample once
    assert 0.0 <= printed["top1"] <= printed["top5"] <= 100.0
    trained = load_training_checkpoint(str(ckpt)).train_state["last_val"]
    assert printed == pytest.approx(trained)  # same numbers as the validation during training


def test_eval_script_without_a_checkpoint_is_a_config_error():
    proc = script("eval.py", "--dataset", "digits")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "pretrained" in out


STUCK = """
import os, signal, sys, time
sys.path.insert(0, {root!r})
from mszoo.config import parse_config
from mszoo.engine.interrupt import SignalStop
from mszoo.engine.trainer import train
SignalStop.SIGNAL_GRACE = 1.0

def stuck_after_step_2(trainer):
    if trainer.global_step == 2:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(120)  # the main thread never comes back (like a dead data pipeline)

from mszoo.cli import start
cfg, _ = parse_config(["--config", sys.argv[1]])
start(cfg)
sys.exit(train(cfg, after_step=stuck_after_step_2))
"""


def test_sigterm_while_the_main_loop_is_stuck_still_saves_the_last_completed_step(tiny_config, tmp_path):
    config = tiny_config(epochs=1, steps_per_epoch=10)
    path = tmp_path / "stuck.py"
    path.write_text(STUCK.format(root=ROOT))
    env = dict(os.environ, GLOG_v="3")
    proc = subprocess.run([sys.executable, str(path), config], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 143, proc.stdout + proc.stderr
    assert "not responding" in proc.stdout
    state = load_training_checkpoint(str(tmp_path / "out" / "run" / "last.ckpt")).train_state
    assert (state["epochs_done"], state["epoch_step"], state["global_step"]) == (0, 2, 2)
