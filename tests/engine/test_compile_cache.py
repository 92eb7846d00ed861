"""The compile cache's directory is named by what shapes the graphs; a re-run reuses it, a change never does."""
import os
import re

import pytest

from mszoo.config import parse_config
from mszoo.engine import compile_cache
from mszoo.engine.compile_cache import compile_cache_dir, compile_cache_key
from tests.conftest import ROOT, script

TINY = ["--arch", "twins_pcpvt_small", "--model_kwargs", '{"embed_dims": [16], "depths": [1]}', "--batch_size", "8"]


def _key(*extra, version="2.10.0", environ=None):
    cfg, _ = parse_config(TINY + list(extra))
    return compile_cache_key(cfg, 1, version, environ={} if environ is None else environ)


def test_compile_cache_key_changes_with_the_model_the_config_and_the_mindspore_version():
    base = _key()
    assert _key() == base  # nothing changed: the same cache
    changed = {_key("--model_kwargs", '{"embed_dims": [24], "depths": [1]}'), _key("--batch_size", "16"),
               _key("--amp_level", "O2"), _key("--seed", "1"), _key("--arch", "twins_svt_small"),
               _key(version="2.7.0"), _key(environ={"MSZOO_FUSED_KERNELS": "0"})}
    assert base not in changed and len(changed) == 7


def test_compile_cache_key_changes_with_the_mszoo_source(tmp_path, monkeypatch):
    (tmp_path / "model.py").write_text("width = 16\n")
    monkeypatch.setattr(compile_cache, "PACKAGE_ROOT", str(tmp_path))
    before = _key()
    (tmp_path / "model.py").write_text("width = 24\n")
    assert _key() != before


def test_compile_cache_key_ignores_paths_run_length_and_logging(tmp_path, monkeypatch):
    base = _key()
    assert _key("--epochs", "3", "--run_name", "other", "--output_dir", "/elsewhere", "--print_loss_every", "5",
                "--compile_cache", "false", environ={"MSZOO_CACHE": "/x", "MS_COMPILER_CACHE_PATH": "/y"}) == base
    monkeypatch.setenv("MSZOO_CACHE", str(tmp_path))
    cfg, _ = parse_config(TINY)
    assert compile_cache_dir(cfg, 1, "2.10.0", {}) == os.path.join(str(tmp_path), "compile", base)


def _cache_files(root):
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns for d, _, fs in os.walk(root) for f in fs}


def _losses(run):
    return re.findall(r"loss:\[([0-9.]+)/", run.stdout + run.stderr)


@pytest.mark.timeout(600)
def test_rerun_reuses_the_compiled_graphs_with_the_same_losses(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setenv("MSZOO_CACHE", str(tmp_path / "cache"))
    config = tiny_config(epochs=1)
    first = script("train.py", "--config", config, "--run_name", "a")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "compile cache:" in first.stdout and "(new;" in first.stdout
    written = _cache_files(tmp_path / "cache" / "compile")
    assert any(name.endswith(".mindir") for name in written)
    again = script("train.py", "--config", config, "--run_name", "b")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reusing its graphs" in again.stdout
    assert _cache_files(tmp_path / "cache" / "compile") == written  # read, not compiled and written again
    assert _losses(again) == _losses(first) and _losses(first)


def test_compile_cache_false_or_pynative_leaves_mindspore_s_cache_off(tmp_path, monkeypatch):
    import sys

    from mszoo.cli import compile_cache_confined, use_compile_cache

    monkeypatch.setattr(sys, "argv", [os.path.join(ROOT, "train.py")])  # a script, as train.py runs (not pytest's -c)
    monkeypatch.setenv("MSZOO_CACHE", str(tmp_path))
    monkeypatch.delenv("MS_COMPILER_CACHE_PATH", raising=False)
    monkeypatch.setenv("MS_COMPILER_CACHE_ENABLE", "1")  # the user's own, unkeyed: "false" must not leave it on
    for flags in (["--compile_cache", "false"], ["--mode", "pynative"]):
        cfg, _ = parse_config(TINY + flags)
        with compile_cache_confined():
            assert use_compile_cache(cfg, 1) is None
            assert "MS_COMPILER_CACHE_ENABLE" not in os.environ and "MS_COMPILER_CACHE_PATH" not in os.environ
        assert os.environ["MS_COMPILER_CACHE_ENABLE"] == "1"  # the user's, back after the run
    cfg, _ = parse_config(TINY)
    with compile_cache_confined():
        path = use_compile_cache(cfg, 1)
        assert os.environ["MS_COMPILER_CACHE_ENABLE"] == "1" and os.environ["MS_COMPILER_CACHE_PATH"] == path
    assert path.startswith(os.path.join(str(tmp_path), "compile"))


def test_a_cache_directory_in_use_by_another_run_is_left_to_it(tmp_path, monkeypatch, caplog):
    """MindSpore writes cache files in place: a second run with the same key at the same time compiles afresh."""
    import subprocess
    import sys

    from mszoo.cli import compile_cache_confined, use_compile_cache

    monkeypatch.setattr(sys, "argv", [os.path.join(ROOT, "train.py")])  # a script: else off before the lock
    monkeypatch.setenv("MSZOO_CACHE", str(tmp_path))
    for var in ("MS_COMPILER_CACHE_ENABLE", "MS_COMPILER_CACHE_PATH"):
        monkeypatch.delenv(var, raising=False)
    cfg, _ = parse_config(TINY)
    path = compile_cache_dir(cfg, 1, __import__("mindspore").__version__)
    os.makedirs(path)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
                               "os.O_CREAT | os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); "
                               "time.sleep(60)", os.path.join(path, ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with compile_cache_confined():
            assert use_compile_cache(cfg, 1) is None and "MS_COMPILER_CACHE_PATH" not in os.environ
        assert "in use by another run" in caplog.text
    finally:
        holder.kill()
        holder.wait()


def test_the_compile_cache_variables_last_one_training_run(monkeypatch):
    from mszoo.cli import COMPILE_CACHE_ENV, compile_cache_confined

    monkeypatch.delenv("MS_COMPILER_CACHE_ENABLE", raising=False)
    monkeypatch.setenv("MS_COMPILER_CACHE_PATH", "/the/users/own")
    with compile_cache_confined():
        os.environ.update(dict(zip(COMPILE_CACHE_ENV, ("1", "/a/run/key"))))
    assert "MS_COMPILER_CACHE_ENABLE" not in os.environ
    assert os.environ["MS_COMPILER_CACHE_PATH"] == "/the/users/own"


def test_the_compile_cache_is_off_when_the_program_is_no_script_file(monkeypatch, tmp_path, capsys):
    """MindSpore hashes the entry script (``sys.argv[0]``) with the graphs: ``python -c`` cannot be cached."""
    import sys

    from mszoo.cli import use_compile_cache

    monkeypatch.setenv("MSZOO_CACHE", str(tmp_path))
    monkeypatch.delenv("MS_COMPILER_CACHE_ENABLE", raising=False)
    monkeypatch.setattr(sys, "argv", ["-c"])
    cfg, _ = parse_config(TINY + ["--mode", "graph"])
    assert use_compile_cache(cfg, 1) is None
    assert "MS_COMPILER_CACHE_ENABLE" not in os.environ and not os.listdir(tmp_path)
    out = capsys.readouterr()
    assert "compile cache: off (MindSpore's cache needs the program to be a script file, not '-c')" in out.out + out.err


@pytest.mark.timeout(600)
def test_a_run_that_validates_before_its_first_step_caches_graphs_a_fresh_run_can_reuse(tiny_config, tmp_path,
                                                                                        monkeypatch, graph_mode):
    """MindSpore numbers cached graphs in compile order and does not check their inputs: a run resumed with its
    epoch's validation still to do compiled the eval graphs first, and a later fresh run then loaded an eval graph
    as its train step ('For Reshape, the size of input_x ...')."""
    import signal

    from mszoo.config import parse_config as parse
    from mszoo.engine.checkpoint import load_training_checkpoint
    from mszoo.engine.trainer import train

    config = tiny_config(epochs=2, steps_per_epoch=2)

    def stop_after_the_epochs_last_step(trainer):
        if trainer.global_step == 2:
            trainer.stop.request(signal.SIGTERM)

    cfg, _ = parse(["--config", config, "--run_name", "cut", "--compile_cache", "false"])
    assert train(cfg, after_step=stop_after_the_epochs_last_step) == 143
    cut = tmp_path / "out" / "cut"
    state = load_training_checkpoint(str(cut / "last.ckpt")).train_state
    assert (state["epochs_done"], state["epoch_step"]) == (0, 2)  # the epoch's validation is still to do

    monkeypatch.setenv("MSZOO_CACHE", str(tmp_path / "cache"))
    resumed = script("train.py", "--resume", str(cut), "--compile_cache", "true")
    assert resumed.returncode == 0 and "(new;" in resumed.stdout, resumed.stdout + resumed.stderr
    fresh = script("train.py", "--config", config, "--run_name", "fresh")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "reusing its graphs" in fresh.stdout
    alone = script("train.py", "--config", config, "--run_name", "alone", "--compile_cache", "false")
    assert _losses(fresh) == _losses(alone) and _losses(alone)
