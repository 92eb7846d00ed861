"""A checkpoint trained with the seed's own TNT code, run with the seed readme's command (``infer.py`` / ``eval.py
--tnt_config <the seed's YAML> --pretrained <its checkpoint>``): the seed code's variant, its logits, one line."""
import json
import os

import numpy as np
import pytest

import eval as eval_script
import infer as infer_script
from mszoo.config import ConfigError
from mszoo.metrics import softmax
from tests.conftest import ROOT

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
SEED_YAML = os.path.join(FIXTURES, "seeds", "readme_tnt_s_patch16_224.yaml")  # the TNT readme's YAML, verbatim
SEED_CKPT = os.path.join(FIXTURES, "seed_ckpt", "tnt_seed_tiny.ckpt")  # tests/fixtures/seed_ckpt/make_tnt_seed.py
SEED_PNG = os.path.join(FIXTURES, "seed_ckpt", "tnt_seed_tiny.png")
# what the YAML cannot say about the tiny fixture (the readme's checkpoint is 224 px, 1000 classes, full width)
TINY_FLAGS = ["--device_target", "CPU", "--num_classes", "5", "--image_size", "32", "--model_kwargs",
              json.dumps(dict(embed_dim=16, inner_dim=8, depth=2, num_heads_outer=2))]
SAYS = "running tnt_s_patch16_224_mindspore_seed, that code's architecture, not the published model tnt_s_patch16_224"


def _seed_probs():
    return softmax(np.load(os.path.join(FIXTURES, "seed_ckpt", "tnt_seed_tiny.npz"))["logits"])[0]


def test_infer_with_the_seed_yaml_runs_the_seed_variant_with_the_seed_codes_logits(tmp_path, capsys):
    out = tmp_path / "pred.json"
    argv = ["--tnt_config", SEED_YAML, "--pretrained", SEED_CKPT] + TINY_FLAGS + ["--input", SEED_PNG,
                                                                                  "--output", str(out)]
    assert infer_script.main(argv) == 0
    assert capsys.readouterr().out.count(SAYS) == 1
    probs = {t["index"]: t["prob"] for t in json.loads(out.read_text())[SEED_PNG]["top5"]}
    np.testing.assert_allclose([probs[i] for i in range(5)], _seed_probs(), atol=1e-5, rtol=0)


def test_eval_with_the_seed_yaml_gives_the_seed_codes_loss(tmp_path, capsys):
    for label in range(5):  # the image once in every class: the mean loss is -mean(log p) over the 5 classes
        os.makedirs(tmp_path / "data" / "val" / str(label))
        os.symlink(SEED_PNG, tmp_path / "data" / "val" / str(label) / "x.png")
    out = tmp_path / "eval.json"
    argv = ["--tnt_config", SEED_YAML, "--pretrained", SEED_CKPT, "--data_url", str(tmp_path / "data"),
            "--batch_size", "2", "--num_parallel_workers", "1", "--output", str(out)] + TINY_FLAGS
    assert eval_script.main(argv) == 0
    assert capsys.readouterr().out.count(SAYS) == 1
    assert abs(json.loads(out.read_text())["loss"] - float(-np.log(_seed_probs()).mean())) < 1e-5


def test_another_model_named_for_a_seed_checkpoint_is_one_error_line():
    with pytest.raises(ConfigError, match="arch: 'twins_svt_small' .* holds a tnt_s_patch16_224_mindspore_seed model"):
        infer_script.main(["--arch", "twins_svt_small", "--pretrained", SEED_CKPT, "--input", SEED_PNG] + TINY_FLAGS)
