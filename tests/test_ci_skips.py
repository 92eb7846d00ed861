"""With CI set, a skipped test (or a module skipped at collection) fails the run and is named; without
CI a skip stays a skip. Runs pytest on a scratch suite with tests/ci_skips.py as its only plugin."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SUITE = {
    "test_demo.py": (
        "import pytest\n"
        "def test_passes():\n    pass\n"
        "def test_needs_foo():\n    pytest.skip('foo is not installed')\n"
        "@pytest.mark.xfail(strict=True, reason='known bug')\n"
        "def test_known_bug():\n    assert False\n"
    ),
    "test_module_skip.py": "import pytest\npytest.importorskip('no_such_module_xyz')\ndef test_x():\n    pass\n",
}


def _run(tmp_path, ci, *files):
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the repo's settings
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.ci_skips", "-q",
                           "-p", "no:cacheprovider", *files], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_skips_fail_the_run_and_are_named_when_ci_is_set(tmp_path):
    out = _run(tmp_path, "true", "test_demo.py", "test_module_skip.py")
    assert out.returncode == 1, out.stdout
    assert "FAILED test_demo.py::test_needs_foo" in out.stdout
    assert "Skip reason: Skipped: foo is not installed" in out.stdout
    assert "test_module_skip.py: Skipped: could not import 'no_such_module_xyz'" in out.stdout
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed" in out.stdout  # xfail is not a skip


def test_a_module_skipped_at_collection_alone_fails_the_run_when_ci_is_set(tmp_path):
    out = _run(tmp_path, "1", "test_module_skip.py")
    assert out.returncode == 1, out.stdout
    assert "no_such_module_xyz" in out.stdout.split("these fail the run")[1]


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_skips_stay_skips_without_ci(tmp_path, ci):
    out = _run(tmp_path, ci, "test_demo.py", "test_module_skip.py")
    assert out.returncode == 0, out.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in out.stdout
