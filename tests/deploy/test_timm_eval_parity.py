"""With nothing but a converted timm checkpoint, ``infer.py`` gives the class probabilities of timm's own eval
pipeline (its ``resolve_data_config`` + ``create_transform``) on real photographs; a shipped YAML's settings win.

The photos are the two real photographs scikit-learn ships (``china.jpg``, ``flower.jpg``), plus a portrait
crop of one saved as PNG and a small copy of the other (upscaled by the eval resize). The weights are timm's
model at a fixed seed with the classifier scaled up, so the probabilities are far from uniform and any
preprocessing difference (mean/std, crop, interpolation) moves them by much more than the 1e-4 allowed.
"""
import json
import os

import numpy as np
import pytest
import timm
import torch

from tests.conftest import ROOT, script

HEAD_GAIN = 30.0


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    import sklearn
    from PIL import Image

    src = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images")
    out = tmp_path_factory.mktemp("photos")
    china, flower = Image.open(os.path.join(src, "china.jpg")), Image.open(os.path.join(src, "flower.jpg"))
    china.save(out / "china.jpg", quality=95)
    flower.save(out / "flower.jpg", quality=95)
    china.crop((200, 0, 440, 427)).save(out / "china_portrait.png")
    flower.resize((160, 107), Image.Resampling.BICUBIC).save(out / "flower_small.png")
    return str(out)


def script_process(name, *args):
    """``python NAME.py ARGS`` started as ``tests.conftest.script`` runs it, not waited for."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, os.path.join(ROOT, name), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, GLOG_v="3"), cwd=ROOT)


def timm_probs(model, photos, **overrides):
    """timm's eval pipeline for ``model``: probabilities per photo file name."""
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    transform = create_transform(**resolve_data_config(overrides, model=model))
    probs = {}
    with torch.no_grad():
        for name in sorted(os.listdir(photos)):
            image = Image.open(os.path.join(photos, name)).convert("RGB")
            probs[name] = model(transform(image).unsqueeze(0)).softmax(-1)[0].numpy()
    return probs


def converted(name, tmp_path):
    """timm's ``name`` at a fixed seed (classifier scaled up) and its conversion by convert_from_pt.py."""
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    with torch.no_grad():
        model.head.weight.mul_(HEAD_GAIN)
    torch.save(model.state_dict(), tmp_path / "w.pth")
    run = script("convert_from_pt.py", "--arch", name, "--input", str(tmp_path / "w.pth"), "--output",
                 str(tmp_path / "w.ckpt"))
    assert run.returncode == 0, run.stdout + run.stderr
    return model, str(tmp_path / "w.ckpt")


def infer(ckpt, photos, *runs):
    """``infer.py`` once per ``(output, flags)`` of ``runs``, the processes side by side (each spends most of its
    time on one core, importing and compiling); the predictions of each run by photo file name."""
    procs = [script_process("infer.py", "--pretrained", ckpt, "--input", photos, "--output", str(out), "--topk", "5",
                            *flags) for out, flags in runs]
    results = []
    for proc, (out, _) in zip(procs, runs):
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stdout + stderr
        with open(out) as f:
            results.append({os.path.basename(path): rec for path, rec in json.load(f).items()})
    return results


def assert_same_probabilities(ours, reference):
    assert sorted(ours) == sorted(reference)
    for name, rec in ours.items():
        expected = reference[name]
        assert rec["index"] == int(np.argmax(expected)), name
        assert rec["prob"] > 0.05, "the test needs confident predictions to be sensitive"
        for entry in rec["top5"]:
            assert entry["prob"] == pytest.approx(float(expected[entry["index"]]), abs=1e-4), name


@pytest.mark.parametrize("name, yaml", [("twins_svt_small", "configs/twins/svt_small.yaml"),
                                        ("tnt_s_patch16_224", None)])
def test_infer_with_only_the_converted_checkpoint_equals_timms_eval_pipeline(name, yaml, photos, tmp_path):
    model, ckpt = converted(name, tmp_path)
    runs = [(tmp_path / "p.json", ())]
    if yaml:  # the shipped recipe's eval settings (Twins: crop_pct 0.875, the official code's) win over the cfg
        runs.append((tmp_path / "y.json", ("--config", yaml)))
    ours = infer(ckpt, photos, *runs)
    assert_same_probabilities(ours[0], timm_probs(model, photos))
    if yaml:
        assert_same_probabilities(ours[1], timm_probs(model, photos, crop_pct=0.875))
