"""The device a run uses: ``device_target: auto`` (the default) picks Ascend, else GPU, else CPU, whichever this
MindSpore build can use (the availability check is faked here: this machine has only a CPU); ``--device_id``
beats an exported DEVICE_ID; a launched worker uses the launcher's device."""
import os
import subprocess
import sys

import pytest

from mszoo.cli import DeviceUnavailable, choose_device, choose_device_id
from mszoo.config import parse_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCHER_VARS = ("MS_WORKER_NUM", "OMPI_COMM_WORLD_SIZE", "RANK_SIZE")


def _only(*usable):
    return lambda device: device in usable + ("CPU",)


@pytest.mark.parametrize("usable,expected", [(("Ascend", "GPU"), "Ascend"), (("Ascend",), "Ascend"),
                                             (("GPU",), "GPU"), ((), "CPU")])
def test_auto_uses_ascend_else_gpu_else_cpu(usable, expected):
    device, why = choose_device("auto", _only(*usable))
    assert device == expected and why.startswith("auto: ")


def test_auto_on_a_cpu_only_build_says_why():
    assert choose_device("auto", _only()) == ("CPU", "auto: this MindSpore build has no GPU or Ascend backend")


def test_the_default_device_target_is_auto():
    cfg, _ = parse_config([])
    assert cfg.device_target == "auto"
    assert parse_config(["--device_target", "AUTO"])[0].device_target == "auto"


@pytest.mark.parametrize("requested", ["CPU", "GPU", "Ascend"])
def test_an_explicit_available_device_is_used_as_asked(requested):
    assert choose_device(requested, _only("GPU", "Ascend"))[0] == requested


def test_an_explicit_device_that_is_not_available_stays_one_error():
    with pytest.raises(DeviceUnavailable, match=r"^device_target Ascend is not available in this MindSpore 2.x "
                                                r"installation \(usable: CPU, GPU\); use --device_target CPU"):
        choose_device("Ascend", _only("GPU"), "2.x")


@pytest.fixture
def alone(monkeypatch):
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)


def test_command_line_device_id_beats_exported_device_id_with_a_note(alone):
    device_id, note = choose_device_id(2, "command line", {"DEVICE_ID": "5"})
    assert device_id == 2 and note == "--device_id 2 is used, not the environment's DEVICE_ID=5"


def test_exported_device_id_beats_the_configs(alone):
    assert choose_device_id(0, "default", {"DEVICE_ID": "5"}) == (
        5, "device 5 from the environment's DEVICE_ID, not device_id 0")
    assert choose_device_id(1, "x.yaml", {"DEVICE_ID": "5"})[1].endswith("not device_id 1 (x.yaml)")
    assert choose_device_id(3, "command line", {}) == (3, None)
    assert choose_device_id(3, "command line", {"DEVICE_ID": "3"}) == (3, None)


def test_a_launched_worker_uses_the_launchers_device(monkeypatch):
    monkeypatch.setenv("MS_WORKER_NUM", "4")
    device_id, note = choose_device_id(0, "command line", {"DEVICE_ID": "3"})
    assert device_id == 3 and "the launcher gave this worker DEVICE_ID=3" in note
    monkeypatch.delenv("MS_WORKER_NUM")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "8")  # mpirun -n 8 python train.py (seed 002): the local rank
    assert choose_device_id(0, "default", {"OMPI_COMM_WORLD_LOCAL_RANK": "6"})[0] == 6


def test_a_device_id_variable_that_is_not_a_number_is_one_config_error(alone):
    from mszoo.config import ConfigError

    with pytest.raises(ConfigError, match=r"^DEVICE_ID: the environment variable must be a non-negative integer"):
        choose_device_id(0, "default", {"DEVICE_ID": "npu1"})


def test_a_run_prints_the_device_it_chose_at_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DEVICE_ID",) + LAUNCHER_VARS}
    out = subprocess.run([sys.executable, os.path.join(ROOT, "eval.py"), "--data_url", str(tmp_path / "none")],
                         capture_output=True, text=True, env=dict(env, GLOG_v="3"), timeout=300)
    assert out.returncode != 0  # no data: the run stops after the device line
    assert out.stdout.splitlines()[0] == "device: CPU (auto: this MindSpore build has no GPU or Ascend backend)"


def test_a_cpu_run_launches_kernels_synchronously():
    """On CPU, ``set_device`` turns MindSpore's asynchronous PyNative dispatch off (its threads only competed with
    the kernels for the same cores: 2-15x slower, mszoo/cpu/launch.py); a fresh process, as a run starts."""
    code = ("from mszoo.cpu.launch import launches_synchronously as on; from mszoo.cli import set_device; "
            "before = on(); set_device('CPU'); print(before, on())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, GLOG_v="3"), timeout=120)
    assert out.stdout.split()[-2:] == ["False", "True"], out.stdout + out.stderr[-2000:]
