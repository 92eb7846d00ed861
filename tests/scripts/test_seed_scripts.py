"""The model-zoo readmes' launch scripts, with the model-zoo readmes' argument orders and flags.

``MSZOO_DRY_RUN=1`` makes a script print the command it would run: each seed example's translation is
checked that way (GPUs, Ascend and mpirun are not on this machine). The forms that run here are also run:
training and resuming through the T2T readme's ``--checkpoint``, evaluation through ``run_eval_gpu.sh`` with
``--extra --device_target CPU``, and data-parallel training on two "machines" (two msrun launches with
NODE_RANK 0 and 1 on this host) that train into one run directory, resumed afterwards by one worker.
"""
import glob
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.engine.conftest import TINY_TRAIN

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICK = os.path.join(ROOT, "configs", "quickstart.yaml")


def bash(script, *args, env=None, cwd=None, timeout=60):
    full = dict(os.environ, GLOG_v="3", **(env or {}))
    full["PATH"] = os.path.dirname(sys.executable) + os.pathsep + full.get("PATH", "")  # msrun runs "python"
    return subprocess.run(["bash", os.path.join(ROOT, "scripts", script), *args], capture_output=True, text=True,
                          env=full, cwd=cwd or ROOT, timeout=timeout)


def dry(script, *args, env=None):
    out = bash(script, *args, env=dict(env or {}, MSZOO_DRY_RUN="1", LOG_ROOT="/tmp/mszoo-dry-logs"))
    assert out.returncode == 0, out.stderr
    return shlex.split(out.stdout.strip().splitlines()[-1])


def _after(cmd, flag):
    return cmd[cmd.index(flag) + 1]


# ------------------------------------------------------------------------------ the model-zoo readmes' examples

def test_t2t_distributed_example_runs_msrun_with_the_device_ids_and_extra_flags():
    # bash run_distribute_train.sh ../src/configs/t2t_vit_19.yaml --num_devices 4 --device_ids 0,1,2,3 --extra ...
    cmd = dry("run_distribute_train.sh", QUICK, "--num_devices", "4", "--device_ids", "0,1,2,3", "--extra",
              "--amp_level", "O0", "--batch_size", "48", "--start_epoch", "0", "--num_parallel_workers", "8")
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3" in cmd and "ASCEND_RT_VISIBLE_DEVICES=0,1,2,3" in cmd
    assert "--worker_num=4" in cmd and "--local_worker_num=4" in cmd and "--node_rank=0" in cmd
    assert cmd[cmd.index("--join=True") + 1] == os.path.join(ROOT, "train.py")
    assert cmd[-10:] == ["--config", QUICK, "--amp_level", "O0", "--batch_size", "48", "--start_epoch", "0",
                         "--num_parallel_workers", "8"]


@pytest.mark.parametrize("script,args", [
    ("run_distribute_train.sh", ["--num_devices", "4", "--device_ids", "0,1,2,3"]),
    ("run_standalone_train.sh", ["--device", "0"]), ("run_eval_gpu.sh", ["--checkpoint", QUICK])])
def test_the_seed_examples_recipe_path_reaches_the_program_which_uses_ours(script, args, tmp_path):
    # bash run_distribute_train.sh ../src/configs/t2t_vit_19.yaml ... run from the readme's scripts/ folder
    out = bash(script, "../src/configs/t2t_vit_19.yaml", *args, cwd=str(tmp_path),
               env={"MSZOO_DRY_RUN": "1", "LOG_ROOT": str(tmp_path / "logs")})
    assert out.returncode == 0, out.stderr
    assert _after(shlex.split(out.stdout.splitlines()[-1]), "--config") == "../src/configs/t2t_vit_19.yaml"
    missing = bash(script, "../src/configs/t2t_vit_99.yaml", *args, cwd=str(tmp_path), env={"MSZOO_DRY_RUN": "1"})
    assert missing.returncode == 2 and missing.stderr == (
        "error: config not found: ../src/configs/t2t_vit_99.yaml (nor a shipped or model-zoo readme recipe name)\n")


def test_project_distributed_form_still_takes_num_devices_first():
    cmd = dry("run_distribute_train.sh", "2", QUICK, "--epochs", "1")
    assert "--worker_num=2" in cmd and cmd[-4:] == ["--config", QUICK, "--epochs", "1"]
    assert not any(c.startswith("CUDA_VISIBLE_DEVICES") for c in cmd)


def test_t2t_gpu_distributed_checkpoint_continues_the_run():
    cmd = dry("run_distribute_train_gpu.sh", QUICK, "--num_devices", "2", "--checkpoint", QUICK)
    assert _after(cmd, "--device_target") == "GPU" and _after(cmd, "--resume") == QUICK


def test_mpirun_is_still_available_for_one_machine():
    cmd = dry("run_distribute_train_gpu.sh", "2", QUICK, env={"LAUNCHER": "mpirun"})
    assert cmd[cmd.index("mpirun") + 1:cmd.index("mpirun") + 3] == ["-n", "2"]


def test_several_machines_count_every_worker():
    env = {"NNODES": "3", "NODE_RANK": "2", "MASTER_ADDR": "10.1.2.3", "MASTER_PORT": "9000"}
    cmd = dry("run_distribute_train.sh", "4", QUICK, env=env)
    assert {"--worker_num=12", "--local_worker_num=4", "--node_rank=2", "--master_addr=10.1.2.3",
            "--master_port=9000"} <= set(cmd)


def test_twins_gpu_distributed_example_takes_target_count_config_and_ids():
    # bash scripts/run_distributed_training_gpu.sh GPU [DEVICE_NUM] [CONFIG_PATH] "[DEVICE_IDS]" [EXTRA_ARGS...]
    cmd = dry("run_distributed_training_gpu.sh", "GPU", "2", QUICK, "4,5", "--dir-ckpt", "/tmp/ck")
    assert "CUDA_VISIBLE_DEVICES=4,5" in cmd and "--worker_num=2" in cmd
    assert cmd[-6:] == ["--config", QUICK, "--device_target", "GPU", "--dir-ckpt", "/tmp/ck"]


def test_twins_gpu_standalone_example_without_arguments_trains_the_seeds_recipe():
    cmd = dry("run_standalone_training_gpu.sh")
    assert _after(cmd, "--config") == os.path.join(ROOT, "configs", "twins", "svt_small.yaml")
    assert _after(cmd, "--device_target") == "GPU"


def test_t2t_standalone_example_takes_device_and_extra():
    # bash run_standalone_train.sh ../src/configs/t2t_vit_19.yaml --device 0 --extra --amp_level O0 --batch_size 48
    cmd = dry("run_standalone_train.sh", QUICK, "--device", "3", "--extra", "--amp_level", "O0", "--batch_size", "48")
    assert "DEVICE_ID=3" in cmd and _after(cmd, "--device_id") == "3"
    assert cmd[-4:] == ["--amp_level", "O0", "--batch_size", "48"]
    gpu = dry("run_standalone_train_gpu.sh", QUICK, "--device", "1", "--checkpoint", QUICK)
    assert _after(gpu, "--device_target") == "GPU" and _after(gpu, "--resume") == QUICK


def test_ascend_seed_scripts_take_device_id_first():
    train = dry("run_standalone_train_ascend.sh", "5", QUICK)
    assert _after(train, "--device_id") == "5" and _after(train, "--device_target") == "Ascend"
    ev = dry("run_eval_ascend.sh", "2", QUICK, QUICK)
    assert ev[ev.index("--config") - 1].endswith("eval.py") and _after(ev, "--pretrained") == QUICK
    assert _after(ev, "--device_id") == "2" and _after(ev, "--device_target") == "Ascend"


def test_t2t_eval_and_infer_examples_map_checkpoint_to_pretrained(tmp_path):
    # bash run_eval_gpu.sh ../src/configs/t2t_vit_19.yaml --checkpoint X --extra --data_url /data/imagenet/ ...
    ev = dry("run_eval_gpu.sh", QUICK, "--checkpoint", QUICK, "--extra", "--data_url", "/data/imagenet/",
             "--val_dir", "validation_preprocess")
    assert _after(ev, "--pretrained") == QUICK and ev[-4:] == ["--data_url", "/data/imagenet/", "--val_dir",
                                                               "validation_preprocess"]
    # bash run_infer_gpu.sh /data/images/cheetah/ --checkpoint X --arch t2t_vit_19
    inf = dry("run_infer_gpu.sh", str(tmp_path), "--checkpoint", QUICK, "--arch", "t2t_vit_19")
    assert inf[inf.index("--input") - 1].endswith("infer.py") and _after(inf, "--input") == str(tmp_path)
    assert _after(inf, "--pretrained") == QUICK and _after(inf, "--arch") == "t2t_vit_19"
    assert _after(inf, "--output") == "predictions.json"
    named = dry("run_infer_gpu.sh", str(tmp_path), "--checkpoint", QUICK, "--output", "x.json")
    assert named.count("--output") == 1 and _after(named, "--output") == "x.json"


def test_tnt_310_inference_evaluates_the_mindir_on_the_auto_device(tmp_path):
    model = tmp_path / "tnt.mindir"
    model.write_bytes(b"x")
    (tmp_path / "val").mkdir()
    cmd = dry("run_infer_310.sh", str(model), "imagenet2012", str(tmp_path), "0")
    assert _after(cmd, "--backend") == "mindir" and _after(cmd, "--model") == str(model)
    assert _after(cmd, "--data_url") == str(tmp_path) and _after(cmd, "--device_id") == "0"
    assert "--device_target" not in cmd


@pytest.mark.parametrize("arch", [["--arch", "tnt_s_patch16_224"], ["tnt_s_patch16_224"]])
def test_310_inference_takes_the_arch_of_a_mindir_without_sidecar(tmp_path, arch):
    model = tmp_path / "seed_export.mindir"  # exported by the seed: no NAME.mindir.json beside it
    model.write_bytes(b"x")
    cmd = dry("run_infer_310.sh", str(model), "imagenet2012", str(tmp_path), "0", *arch)
    assert _after(cmd, "--arch") == "tnt_s_patch16_224" and _after(cmd, "--val_dir") == str(tmp_path)


# The model-zoo readmes' launch commands and the device each was written for (auto: the generic scripts, which leave the
# device to the config, by default Ascend, else GPU, else CPU).
SEED_LAUNCHES = [
    ("000", "run_distributed_training_gpu.sh", ["GPU", "2", QUICK, "0,1"], "GPU"),
    ("000", "run_distribute_training_gpu.sh", ["GPU", "2", QUICK, "0,1"], "GPU"),
    ("000", "run_standalone_training_gpu.sh", [], "GPU"),
    ("001", "run_standalone_train_ascend.sh", ["0", QUICK], "Ascend"),
    ("001", "run_eval_ascend.sh", ["0", QUICK, QUICK], "Ascend"),
    ("003", "run_distribute_train_gpu.sh", [QUICK, "--num_devices", "4", "--device_ids", "0,1,2,3"], "GPU"),
    ("003", "run_standalone_train_gpu.sh", [QUICK, "--device", "0"], "GPU"),
    ("003", "run_eval_gpu.sh", [QUICK, "--checkpoint", QUICK], "GPU"),
    ("003", "run_infer_gpu.sh", [ROOT, "--checkpoint", QUICK, "--arch", "t2t_vit_19"], "GPU"),
    ("003", "run_distribute_train.sh", [QUICK, "--num_devices", "4", "--device_ids", "0,1,2,3"], "auto"),
    ("003", "run_standalone_train.sh", [QUICK, "--device", "0"], "auto"),
    ("004", "run_standalone_train_ascend.sh", ["0", QUICK], "Ascend"),
    ("004", "run_eval_ascend.sh", ["0", QUICK, QUICK], "Ascend"),
    ("004", "run_infer_310.sh", [QUICK, "imagenet2012", ROOT, "0"], "auto"),
]


@pytest.mark.parametrize("seed,script,args,device", SEED_LAUNCHES, ids=[f"{s[0]}:{s[1]}" for s in SEED_LAUNCHES])
def test_dry_run_shows_each_seed_launch_with_its_device(seed, script, args, device):
    out = bash(script, *args, env={"MSZOO_DRY_RUN": "1", "LOG_ROOT": "/tmp/mszoo-dry-logs"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    expected = (f"device: {device} (--device_target {device})" if device != "auto" else
                "device: the config's device_target, by default auto (Ascend, else GPU, else CPU: whichever this "
                "MindSpore can use)")
    assert lines[-2] == expected
    cmd = shlex.split(lines[-1])
    assert (_after(cmd, "--device_target") if "--device_target" in cmd else "auto") == device


def test_extra_device_target_overrides_the_scripts_device_in_the_dry_run():
    out = bash("run_eval_gpu.sh", QUICK, "--checkpoint", QUICK, "--extra", "--device_target", "CPU",
               env={"MSZOO_DRY_RUN": "1"})
    assert out.stdout.strip().splitlines()[-2] == "device: CPU (--device_target CPU)"


def test_ascend_rank_table_dry_run_shows_each_process_on_ascend(tmp_path):
    table = tmp_path / "rank_table.json"
    table.write_text(json.dumps({"server_list": [{"server_id": "s", "device": [
        {"device_id": str(d), "device_ip": f"192.0.2.{d}", "rank_id": str(d)} for d in (0, 1)]}]}))
    out = bash("run_distribute_train_ascend.sh", str(table), QUICK, env={"MSZOO_DRY_RUN": "1",
                                                                         "LOG_ROOT": str(tmp_path / "logs")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("device: Ascend (--device_target Ascend)") == 2


# ------------------------------------------------------------------------------ argument checking

@pytest.mark.parametrize("script,args,expected", [
    ("run_standalone_train_gpu.sh", [], "usage: "),
    ("run_standalone_train_gpu.sh", ["--device", "0"], "the first argument is the config file"),
    ("run_standalone_train.sh", [QUICK, "--device", "gpu1"], "--device must be a non-negative integer"),
    ("run_standalone_train.sh", [QUICK, "--checkpoint"], "--checkpoint needs a value"),
    ("run_standalone_train.sh", [QUICK, "--checkpoint", "missing.ckpt"], "checkpoint not found: missing.ckpt"),
    ("run_standalone_train_ascend.sh", [QUICK], "usage: "),
    ("run_standalone_train_ascend.sh", [QUICK, "0"], "DEVICE_ID must be a non-negative integer"),
    ("run_distribute_train.sh", [QUICK], "give --num_devices N or --device_ids 0,1,.."),
    ("run_distribute_train.sh", [QUICK, "--num_devices", "3", "--device_ids", "0,1"],
     "--num_devices 3 but --device_ids lists 2 devices (0,1)"),
    ("run_distribute_train.sh", [QUICK, "--device_ids", "0;1"], "--device_ids must look like 0,1,2,3"),
    ("run_distribute_train.sh", ["2", QUICK, "--num_devices", "4"], "NUM_DEVICES 2 but --num_devices 4"),
    ("run_distribute_train_gpu.sh", ["configs/missing.yaml", "--num_devices", "2"], "config not found: "),
    ("run_distributed_training_gpu.sh", ["GPU", "4", QUICK], "usage: "),
    ("run_distributed_training_gpu.sh", ["TPU", "4", QUICK, "0,1,2,3"], "DEVICE_TARGET must be GPU, Ascend or CPU"),
    ("run_distributed_training_gpu.sh", ["GPU", "4", QUICK, "0,1"], "--num_devices 4 but --device_ids lists 2"),
    ("run_eval_gpu.sh", [], "usage: "),
    ("run_eval_gpu.sh", [QUICK], "--checkpoint CKPT is required"),
    ("run_eval_ascend.sh", ["0", QUICK], "usage: "),
    ("run_eval_ascend.sh", ["0", QUICK, "missing.ckpt"], "checkpoint not found: "),
    ("run_infer_gpu.sh", [], "usage: "),
    ("run_infer_gpu.sh", ["missing_dir"], "input not found: missing_dir"),
    ("run_infer_gpu.sh", [ROOT], "--checkpoint CKPT is required"),
    ("run_infer_310.sh", ["x.mindir", "imagenet2012"], "usage: "),
    ("run_infer_310.sh", [QUICK, "cifar10", ROOT], "DATASET_NAME must be imagenet2012"),
    ("run_eval_onnx.sh", [], "usage: "),
    ("run_infer_onnx.sh", ["missing.onnx", ROOT], "ONNX model not found"),
])
def test_seed_scripts_check_their_arguments(script, args, expected):
    out = bash(script, *args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert expected in out.stderr


@pytest.mark.parametrize("env,expected", [
    ({"NNODES": "2", "NODE_RANK": "2"}, "NODE_RANK must be below NNODES (2), got 2"),
    ({"NNODES": "0"}, "NNODES must be a positive integer, got '0'"),
    ({"LAUNCHER": "mpirun", "NNODES": "2", "NODE_RANK": "1"}, "LAUNCHER=mpirun starts one machine"),
])
def test_several_machines_settings_are_checked(env, expected):
    out = bash("run_distribute_train.sh", "1", QUICK, env=dict(env, MSZOO_DRY_RUN="1"))
    assert out.returncode == 2 and expected in out.stderr


# ------------------------------------------------------------------------------ the forms that run here

def _tiny_yaml(tmp_path, digits_cache, **overrides):
    data = dict(TINY_TRAIN, data_url=digits_cache, output_dir=str(tmp_path / "runs"), epochs=1)
    data.pop("run_name")
    data.update(overrides)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_t2t_standalone_training_then_checkpoint_continues_it(tmp_path, digits_cache):
    config = _tiny_yaml(tmp_path, digits_cache, run_name="seed")
    first = bash("run_standalone_train.sh", config, "--device", "0", cwd=str(tmp_path), timeout=300)
    assert first.returncode == 0, first.stdout[-2000:]
    assert glob.glob(str(tmp_path / "logs" / "standalone-*" / "train.out"))  # logs under the caller's folder
    last = tmp_path / "runs" / "seed" / "last.ckpt"
    again = bash("run_standalone_train.sh", config, "--checkpoint", str(last), "--extra", "--epochs", "2",
                 cwd=str(tmp_path), timeout=300)
    assert again.returncode == 0, again.stdout[-2000:]
    log = (tmp_path / "runs" / "seed" / "train.log").read_text()
    assert "resumed at epoch 2, step 0/3" in log and "epoch 2/2 done" in log


def test_t2t_eval_script_evaluates_a_checkpoint(trained_tiny):
    ckpt = trained_tiny["ckpt"]
    out = bash("run_eval_gpu.sh", os.path.join(os.path.dirname(ckpt), "config.yaml"), "--checkpoint", ckpt,
               "--extra", "--device_target", "CPU", "--val_num_samples", "50", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "eval results: {'loss': " in out.stdout and "'num_samples': 50}" in out.stdout


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _second_machine_path(tmp_path):
    """A PATH whose ``msrun`` decides as msrun on another machine (tests/scripts/msrun_second_machine.py)."""
    bin_dir = tmp_path / "machine1_bin"
    bin_dir.mkdir()
    shim = bin_dir / "msrun"
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} "
                    f"{shlex.quote(os.path.join(ROOT, 'tests', 'scripts', 'msrun_second_machine.py'))} \"$@\"\n")
    shim.chmod(0o755)
    return str(bin_dir) + os.pathsep + os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]


@pytest.mark.timeout(600)
def test_two_machines_train_one_run_and_one_worker_resumes_it(tmp_path, digits_cache):
    assert shutil.which("msrun", path=os.path.dirname(sys.executable)), "msrun (installed with mindspore) missing"
    # No run_name: the ranks agree on rank 0's default name (they start in different seconds here too).
    # 64 train images: 4 steps of 8 per worker on two machines, 8 steps for one worker.
    config = _tiny_yaml(tmp_path, digits_cache, batch_size=8, steps_per_epoch=None, train_num_samples=64,
                        val_num_samples=41)
    env = {"NNODES": "2", "MASTER_PORT": str(_free_port()), "LOG_ROOT": str(tmp_path / "logs")}
    base = dict(os.environ, GLOG_v="3", **env)
    base["PATH"] = os.path.dirname(sys.executable) + os.pathsep + base["PATH"]
    launch = [["bash", os.path.join(ROOT, "scripts", "run_distribute_train.sh"), "1", config]]
    node0 = subprocess.Popen(*launch, env=dict(base, NODE_RANK="0"), cwd=str(tmp_path), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    node1 = subprocess.run(*launch, env=dict(base, NODE_RANK="1", PATH=_second_machine_path(tmp_path)),
                           cwd=str(tmp_path), capture_output=True, text=True, timeout=500)
    out0, _ = node0.communicate(timeout=500)
    logs = "\n".join(Path(p).read_text()[-1500:] for p in glob.glob(str(tmp_path / "logs" / "*" / "*.log")))
    assert node0.returncode == 0 and node1.returncode == 0, logs
    assert os.listdir(tmp_path / "logs") and len(os.listdir(tmp_path / "logs")) == 2  # one folder per machine

    runs = os.listdir(tmp_path / "runs")
    assert len(runs) == 1, runs  # one run directory for both machines
    run_dir = tmp_path / "runs" / runs[0]
    assert {"train.log", "train_rank1.log", "last.ckpt", "metrics.csv"} <= set(os.listdir(run_dir))
    log = (run_dir / "train.log").read_text()
    assert "4 steps/epoch of 8 x 1 x 2 device(s) = global batch 16" in log
    assert "val top-1" in log and "'num_samples'" not in log

    # One worker continues the two-machine run: same epochs of data, twice the steps per epoch.
    resumed = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--resume", str(run_dir),
                              "--epochs", "2"], env=dict(os.environ, GLOG_v="3"), cwd=str(tmp_path),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    log = (run_dir / "train.log").read_text()
    assert ("note: resuming with another global batch: 16 -> 8 images per step (2 -> 1 workers), 4 -> 8 steps "
            "per epoch; the lr schedule continues where it was") in log, log[-3000:]
    assert "resumed at epoch 2, step 0/8 (global step 8)" in log
    assert "epoch 2/2 done" in log


# ------------------------------------------------------------------------------ the model-zoo readmes' other file names

@pytest.mark.parametrize("script,args", [("eval_onnx.py", ["--data_url"]), ("infer_onnx.py", ["--input"])])
def test_seed_onnx_programs_run_ours_with_the_onnx_backend(script, args, tmp_path):
    (tmp_path / "val" / "a").mkdir(parents=True)
    (tmp_path / "val" / "a" / "x.png").write_bytes(b"x")
    out = subprocess.run([sys.executable, os.path.join(ROOT, script), *args, str(tmp_path), "--model",
                          str(tmp_path / "missing.onnx")], capture_output=True, text=True,
                         env=dict(os.environ, GLOG_v="3"), timeout=300)
    # the onnx backend looks for the file (eval.py/infer.py alone would ask for a checkpoint)
    assert out.returncode == 1 and out.stderr == f"error: model file not found: {tmp_path / 'missing.onnx'}\n"


def test_seed_distribute_training_gpu_name_is_the_distributed_training_script():
    # scripts/run_distribute_training_gpu.sh, as the Twins GPU readme's file list spells it
    def command(script):  # the log folder's name holds the time
        return [a for a in dry(script, "GPU", "2", QUICK, "0,1") if not a.startswith("--log_dir=")]

    assert command("run_distribute_training_gpu.sh") == command("run_distributed_training_gpu.sh")


def test_310_inference_evaluates_a_mindir_without_sidecar_given_its_arch(trained_tiny, tmp_path):
    from mszoo.config import parse_config
    from mszoo.deploy.export import export_model, sidecar_path

    export_model(parse_config(["--pretrained", trained_tiny["ckpt"], "--file_name", str(tmp_path / "seed"),
                               "--file_format", "MINDIR"])[0])
    model = str(tmp_path / "seed.mindir")
    os.remove(sidecar_path(model))  # as the readme's export.py left it
    without = bash("run_infer_310.sh", model, "imagenet2012", trained_tiny["digits"], "0", cwd=str(tmp_path),
                   timeout=300)
    assert without.returncode != 0 and "give --arch" in without.stdout + without.stderr
    out = bash("run_infer_310.sh", model, "imagenet2012", trained_tiny["digits"], "0", "twins_pcpvt_small",
               "--image_size", "16", "--crop_pct", "1.0", "--val_num_samples", "40", cwd=str(tmp_path), timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "'num_samples': 40" in (tmp_path / "acc.log").read_text()


@pytest.mark.parametrize("script,args", [("run_standalone_train.sh", [QUICK]),
                                         ("run_standalone_train_gpu.sh", [QUICK]),
                                         ("run_eval_gpu.sh", [QUICK, "--checkpoint", QUICK])])
def test_one_device_scripts_use_the_exported_device_id_unless_given_one(script, args):
    assert _after(dry(script, *args, env={"DEVICE_ID": "3"}), "--device_id") == "3"
    given = bash(script, *args, "--device", "1", env={"DEVICE_ID": "3", "MSZOO_DRY_RUN": "1",
                                                      "LOG_ROOT": "/tmp/mszoo-dry-logs"})
    assert _after(shlex.split(given.stdout.splitlines()[-1]), "--device_id") == "1"
    assert "note: device 1 (given) is used, not the environment's DEVICE_ID=3" in given.stderr
