"""Training learns: a small Twins trained for a fixed number of steps on the embedded digits fits them,
and eval.py on the run's checkpoint reports the run's own final validation numbers."""
import csv
import importlib

import pytest

from mszoo.config import parse_config
from mszoo.engine.trainer import train

# Two PCPVT stages of widths 32 and 48 on 16x16 digits: 4 epochs of 45 steps take ~17 s on 2 cores and
# reach ~90% val top-1 (chance is 10%). Light augmentation as in configs/quickstart.yaml.
LEARNING_RUN = dict(
    model_kwargs={"embed_dims": [32, 48], "depths": [1, 1], "num_heads": [2, 2], "mlp_ratios": [2, 2],
                  "sr_ratios": [1, 1], "patch_size": 2},
    epochs=4, steps_per_epoch=None, batch_size=32, min_crop=0.7, label_smoothing=0.0, base_lr=0.003,
    warmup_length=0, lr_scheduler="constant_lr", val_num_samples=None, print_loss_every=20,
)


@pytest.fixture(scope="module")
def learned_run(tmp_path_factory, digits_cache):
    """Train once for this module; returns (run directory, metrics.csv rows)."""
    import mindspore as ms
    import yaml

    from tests.engine.conftest import TINY_TRAIN

    tmp = tmp_path_factory.mktemp("learning")
    config = tmp / "learning.yaml"
    config.write_text(yaml.safe_dump(dict(TINY_TRAIN, data_url=digits_cache, output_dir=str(tmp / "out"),
                                          **LEARNING_RUN)))
    cfg, _ = parse_config(["--config", str(config)])
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        assert train(cfg) == 0
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    run_dir = tmp / "out" / "run"
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return run_dir, rows


def test_training_lowers_the_loss_and_reaches_val_top1_far_above_chance(learned_run):
    _, rows = learned_run
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    train_loss = [float(r["train_loss"]) for r in rows]
    val_loss = [float(r["val_loss"]) for r in rows]
    top1 = [float(r["val_top1"]) for r in rows]
    # ln(10) = 2.30 is the loss of a uniform guess; wrong image/label pairing stays there.
    assert train_loss[-1] < 0.5 * train_loss[0] and train_loss[-1] < 1.0, train_loss
    assert val_loss[-1] < 0.5 * val_loss[0] or val_loss[-1] < 1.0, val_loss
    assert top1[-1] >= 75.0, top1  # chance: 10%
    assert int(rows[-1]["step"]) == 4 * (1437 // 32)  # every batch of every epoch was a step


def test_eval_script_reports_the_training_runs_final_validation(learned_run, capsys, pynative):
    """eval.py on last.ckpt (another batch size, so the last batch is partial) gives the numbers the trainer
    logged for its final validation: same samples, same counts, same loss. (eval.py sets the saved config's
    GRAPH mode; the ``pynative`` fixture puts PyNative back for later tests.)"""
    run_dir, rows = learned_run
    eval_script = importlib.import_module("eval")
    out_json = run_dir / "eval.json"
    assert eval_script.main(["--pretrained", str(run_dir / "last.ckpt"), "--batch_size", "50",
                             "--output", str(out_json)]) == 0
    import json

    results = json.loads(out_json.read_text())
    assert results["num_samples"] == 360  # 20% of 1,797 digits, each once (360 = 7 x 50 + 10)
    final = rows[-1]
    assert results["top1"] == pytest.approx(float(final["val_top1"]), abs=1e-3)
    assert results["top5"] == pytest.approx(float(final["val_top5"]), abs=1e-3)
    assert results["loss"] == pytest.approx(float(final["val_loss"]), abs=1e-4)
    assert "eval results: {'loss': " in capsys.readouterr().out
