"""Checkpoints trained with the model-zoo code (TNT: the model zoo's research/cv/TNT; Twins: the Ascend readme's
code), run with the model-zoo readme's command (``infer.py`` / ``eval.py --tnt_config|--config <the readme's YAML>
--pretrained <its checkpoint>``): that code's variant, that code's logits, and one line saying so."""
import json
import os

import numpy as np
import pytest

import eval as eval_script
import infer as infer_script
from mszoo.config import ConfigError
from mszoo.metrics import softmax
from tests.conftest import ROOT

# The scripts' main() sets MindSpore's mode as its own process would; PyNative is put back after each test.
pytestmark = pytest.mark.usefixtures("pynative")

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
SEED_DIR = os.path.join(FIXTURES, "seed_ckpt")  # made by tests/fixtures/seed_ckpt/make_seed_fixtures.py
# family -> (config flag and the readme's YAML verbatim, the readme's arch there, our variant, the fixture's widths:
# what the YAML cannot say about a tiny checkpoint; the readmes' are 224 px, 1000 classes, full width)
CASES = {
    "tnt": ("--tnt_config", "readme_tnt_s_patch16_224.yaml", "tnt_s_patch16_224", "tnt_s_patch16_224_mindspore_seed",
            dict(embed_dim=16, inner_dim=8, depth=2, num_heads_outer=2)),
    "twins": ("--config", "readme_twin_s.yaml", "pcpvt_small_v0", "twins_pcpvt_small_mindspore_seed",
              dict(embed_dims=[8, 16, 24, 32], num_heads=[1, 2, 3, 4], mlp_ratios=[4, 4, 2, 2], depths=[2, 1, 1, 1],
                   sr_ratios=[4, 2, 2, 1])),
}


def _paths(family):
    return {ext: os.path.join(SEED_DIR, f"{family}_seed_tiny.{ext}") for ext in ("ckpt", "png", "npz")}


def _seed_command(family):
    flag, yaml_name, _, _, widths = CASES[family]
    return [flag, os.path.join(FIXTURES, "seeds", yaml_name), "--pretrained", _paths(family)["ckpt"],
            "--device_target", "CPU", "--num_classes", "5", "--image_size", "32", "--model_kwargs", json.dumps(widths)]


def _says(family):
    _, _, seed_arch, variant, _ = CASES[family]
    return f"running {variant}, that code's architecture, not the published model {seed_arch}"


def _seed_probs(family):
    return softmax(np.load(_paths(family)["npz"])["logits"])[0]


@pytest.mark.parametrize("family", sorted(CASES))
def test_infer_with_the_seed_yaml_runs_the_seed_variant_with_the_seed_codes_logits(family, tmp_path, capsys):
    out, png = tmp_path / "pred.json", _paths(family)["png"]
    assert infer_script.main(_seed_command(family) + ["--input", png, "--output", str(out)]) == 0
    assert capsys.readouterr().out.count(_says(family)) == 1
    probs = {t["index"]: t["prob"] for t in json.loads(out.read_text())[png]["top5"]}
    np.testing.assert_allclose([probs[i] for i in range(5)], _seed_probs(family), atol=1e-5, rtol=0)


def test_eval_with_the_seed_yaml_gives_the_seed_codes_loss(tmp_path, capsys):
    for label in range(5):  # the image once in every class: the mean loss is -mean(log p) over the 5 classes
        os.makedirs(tmp_path / "data" / "val" / str(label))
        os.symlink(_paths("tnt")["png"], tmp_path / "data" / "val" / str(label) / "x.png")
    out = tmp_path / "eval.json"
    argv = _seed_command("tnt") + ["--data_url", str(tmp_path / "data"), "--batch_size", "2",
                                   "--num_parallel_workers", "1", "--output", str(out)]
    assert eval_script.main(argv) == 0
    assert capsys.readouterr().out.count(_says("tnt")) == 1
    assert abs(json.loads(out.read_text())["loss"] - float(-np.log(_seed_probs("tnt")).mean())) < 1e-5


def test_another_model_named_for_a_seed_checkpoint_is_one_error_line():
    paths = _paths("tnt")
    with pytest.raises(ConfigError, match="arch: 'twins_svt_small' .* holds a tnt_s_patch16_224_mindspore_seed model"):
        infer_script.main(["--arch", "twins_svt_small", "--pretrained", paths["ckpt"], "--input", paths["png"]])
