"""Global state belongs to the entry scripts: calling ``mszoo`` changes no environment variable and no MindSpore
context; an unavailable device is one line and exit code 1."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = r"""
import json, os, sys
sys.path.insert(0, {root!r})
import numpy as np
import mindspore as ms
ms.Tensor(np.ones(2, np.float32)) + 1  # MindSpore's own start-up is not ours to judge
env, mode = dict(os.environ), ms.get_context("mode")

from mszoo.config import parse_config
from mszoo.deploy.export import export_model
from mszoo.deploy.infer import infer_images
from mszoo.engine.evaluator import evaluate_checkpoint
from mszoo.models import create_model

create_model("twins_pcpvt_small", num_classes=3, img_size=16, embed_dims=[8], depths=[1], num_heads=[1],
             mlp_ratios=[2], sr_ratios=[1], patch_size=2)
ckpt, photos, out = sys.argv[1:4]
infer_images(parse_config(["--pretrained", ckpt])[0], input=photos)
export_model(parse_config(["--pretrained", ckpt, "--file_name", out, "--file_format", "MINDIR"])[0])
evaluate_checkpoint(parse_config(["--pretrained", ckpt])[0])
changed = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))
print("STATE " + json.dumps({{"changed": changed, "mode_before": mode, "mode_after": ms.get_context("mode")}}))
"""


def test_library_calls_change_no_environment_variable_or_mindspore_context(trained_tiny, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    env["GLOG_v"] = "3"
    run = subprocess.run([sys.executable, "-c", PROBE.format(root=ROOT), trained_tiny["ckpt"],
                          trained_tiny["photos"], str(tmp_path / "m")], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    state = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("STATE "))[6:])
    assert state["changed"] == [] and state["mode_after"] == state["mode_before"]


def test_an_unavailable_device_is_one_line_naming_it_and_the_fix(trained_tiny):
    run = subprocess.run([sys.executable, os.path.join(ROOT, "eval.py"), "--pretrained", trained_tiny["ckpt"],
                          "--device_target", "GPU"], capture_output=True, text=True,
                         env=dict(os.environ, GLOG_v="3"), timeout=300)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: device_target GPU is not available in this MindSpore")
    assert "use --device_target CPU" in lines[0]
