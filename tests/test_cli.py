"""mszoo.cli.run: a user error is one line and an exit code; MSZOO_DEBUG=1 shows the full traceback instead."""
import os
import subprocess
import sys

import pytest

from mszoo.cli import EXIT_CONFIG, EXIT_USER, run
from mszoo.config import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _raise(exc):
    def main(argv):
        raise exc

    return main


@pytest.mark.parametrize("exc, code, line", [(ConfigError("batch_size: must be > 0"), EXIT_CONFIG,
                                              "config error: batch_size: must be > 0"),
                                             (FileNotFoundError("no such file: x.ckpt\nmore"), EXIT_USER,
                                              "error: no such file: x.ckpt")])
def test_user_errors_are_one_line_and_an_exit_code_without_debug(exc, code, line, monkeypatch, capsys):
    monkeypatch.delenv("MSZOO_DEBUG", raising=False)
    assert run(_raise(exc)) == code
    assert capsys.readouterr().err == line + "\n"
    monkeypatch.setenv("MSZOO_DEBUG", "0")
    assert run(_raise(exc)) == code


@pytest.mark.parametrize("exc", [ConfigError("batch_size: must be > 0"), ValueError("bad checkpoint")])
def test_mszoo_debug_lets_the_exception_through(exc, monkeypatch):
    monkeypatch.setenv("MSZOO_DEBUG", "1")
    with pytest.raises(type(exc), match=str(exc)):
        run(_raise(exc))


def test_mszoo_debug_prints_the_full_traceback_of_a_script():
    env = dict(os.environ, GLOG_v="3", MSZOO_DEBUG="1")
    out = subprocess.run([sys.executable, "train.py", "--batch_size", "0"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1  # an uncaught exception
    assert out.stderr.startswith("Traceback (most recent call last):"), out.stderr[-2000:]
    assert 'train.py", line' in out.stderr and "mszoo/config/" in out.stderr  # the frames, down to the check
    assert out.stderr.rstrip().splitlines()[-1].endswith("batch_size: must be > 0, got 0 (from command line)")
