"""Self-describing checkpoints: eval, infer and export need only ``--pretrained``; a setting that contradicts
the weights, a checkpoint without a head, or weights that do not fit are refused, never run."""
import json
import os
import shutil

import numpy as np
import pytest

from mszoo.config import ConfigError, parse_config
from mszoo.deploy.export import export_model, read_sidecar
from mszoo.deploy.infer import infer_images
from mszoo.engine.checkpoint import load_training_checkpoint
from mszoo.engine.evaluator import evaluate_checkpoint
from mszoo.models.loading import CheckpointError
from tests.conftest import TINY_SELF_DESCRIBING as TINY
from tests.conftest import script


@pytest.fixture
def tiny(trained_tiny):
    """The session's tiny trained run (tests/conftest.py): ``ckpt``, ``photos``, ``digits``."""
    return trained_tiny
def predictions(argv, **kwargs):
    cfg, _ = parse_config(argv)
    kwargs.setdefault("output", None)
    out = kwargs["output"]
    assert infer_images(cfg, **kwargs) == 0
    with open(out) as f:
        return json.load(f)


def test_the_checkpoint_records_its_model_classes_and_preprocessing(tiny):
    record = load_training_checkpoint(tiny["ckpt"]).record
    assert record["arch"] == "twins_pcpvt_small" and record["num_classes"] == 10
    assert record["model_kwargs"] == TINY and record["image_size"] == 16 and record["crop_pct"] == 1.0
    assert record["class_names"] == [str(i) for i in range(10)]
    assert record["mean"] == [0.485, 0.456, 0.406] and record["interpolation"] == "bicubic"  # the variant's


def test_infer_needs_only_the_checkpoint_and_agrees_with_every_flag_spelled_out(tiny, tmp_path):
    alone = predictions(["--pretrained", tiny["ckpt"]], input=tiny["photos"], output=str(tmp_path / "a.json"))
    spelled = predictions(["--pretrained", tiny["ckpt"], "--arch", "twins_pcpvt_small", "--num_classes", "10",
                           "--model_kwargs", json.dumps(TINY), "--image_size", "16", "--crop_pct", "1.0",
                           "--interpolation", "bicubic"], input=tiny["photos"], output=str(tmp_path / "b.json"))
    assert alone == spelled and len(alone) == 4
    assert {rec["class"] for rec in alone.values()} <= {str(i) for i in range(10)}  # names from the checkpoint


def test_export_needs_only_the_checkpoint_and_its_onnx_runs_from_the_sidecar_alone(tiny, tmp_path):
    cfg, _ = parse_config(["--pretrained", tiny["ckpt"], "--file_format", "ONNX",
                           "--file_name", str(tmp_path / "m")])
    assert export_model(cfg) == 0
    meta = read_sidecar(str(tmp_path / "m.onnx"))
    assert meta["num_classes"] == 10 and meta["model_kwargs"] == TINY and meta["crop_pct"] == 1.0
    assert meta["class_names"] == [str(i) for i in range(10)]
    ours = predictions(["--pretrained", tiny["ckpt"]], input=tiny["photos"], output=str(tmp_path / "a.json"))
    onnx = predictions([], input=tiny["photos"], backend="onnx", model=str(tmp_path / "m.onnx"),
                       output=str(tmp_path / "o.json"))
    assert ours.keys() == onnx.keys()
    for path, rec in ours.items():
        assert onnx[path]["class"] == rec["class"]
        assert onnx[path]["prob"] == pytest.approx(rec["prob"], abs=1e-5)


def test_an_exported_model_without_sidecar_needs_its_arch(tiny, tmp_path):
    cfg, _ = parse_config(["--pretrained", tiny["ckpt"], "--file_format", "ONNX",
                           "--file_name", str(tmp_path / "m")])
    export_model(cfg)
    os.remove(tmp_path / "m.onnx.json")
    from mszoo.deploy.infer import InferenceError

    with pytest.raises(InferenceError, match=r"has no sidecar .*give --arch"):
        predictions([], input=tiny["photos"], backend="onnx", model=str(tmp_path / "m.onnx"),
                    output=str(tmp_path / "o.json"))


def test_eval_needs_only_the_checkpoint(tiny, capsys):
    cfg, _ = parse_config(["--pretrained", tiny["ckpt"]])
    assert evaluate_checkpoint(cfg) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("eval results: ") and "'num_samples': 64" in line  # data keys from its saved config


@pytest.mark.parametrize("name, extra", [("infer.py", ["--input", "PHOTOS"]), ("export.py", ["--file_name", "X"]),
                                         ("eval.py", [])])
def test_a_num_classes_that_contradicts_the_weights_is_one_error_line(tiny, tmp_path, name, extra):
    extra = [a.replace("PHOTOS", tiny["photos"]).replace("X", str(tmp_path / "x")) for a in extra]
    run = script(name, "--pretrained", tiny["ckpt"], "--num_classes", "5", *extra)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.strip() == (f"config error: num_classes: 5 (from command line) contradicts {tiny['ckpt']}, "
                                  "which holds num_classes 10; drop the num_classes setting or use the matching "
                                  "checkpoint")
    assert not os.path.exists(tmp_path / "x.mindir")


def _without_record(tiny, tmp_path):
    """The checkpoint as an older version (or a seed) wrote it: weights only, no record, no config."""
    import mindspore as ms

    ckpt = load_training_checkpoint(tiny["ckpt"])
    path = str(tmp_path / "old.ckpt")
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in ckpt.tensors.items()
                        if not k.startswith(("optimizer.", "loss_scale."))], path)
    return path


def test_a_checkpoint_without_record_runs_through_flags_and_takes_its_classes_from_the_head(tiny, tmp_path):
    old = _without_record(tiny, tmp_path)
    flags = ["--model_kwargs", json.dumps(TINY), "--image_size", "16", "--crop_pct", "1.0"]
    got = predictions(["--pretrained", old, *flags], input=tiny["photos"], output=str(tmp_path / "old.json"))
    new = predictions(["--pretrained", tiny["ckpt"]], input=tiny["photos"], output=str(tmp_path / "new.json"))
    for path, rec in new.items():  # same indices and probabilities; names only where the checkpoint has them
        assert (got[path]["index"], got[path]["prob"]) == (rec["index"], pytest.approx(rec["prob"], abs=1e-6))
    with pytest.raises(ConfigError, match=r"num_classes: 5 .* holds a 10-class classifier"):
        predictions(["--pretrained", old, "--num_classes", "5", *flags], input=tiny["photos"],
                    output=str(tmp_path / "x.json"))
    with pytest.raises(CheckpointError, match=r"does not fit the model: .*carries no model record"):
        predictions(["--pretrained", old], input=tiny["photos"], output=str(tmp_path / "y.json"))


def test_no_checkpoint_means_no_predictions(tiny, tmp_path):
    with pytest.raises(ConfigError, match="pretrained: give the checkpoint"):
        predictions([], input=tiny["photos"], output=str(tmp_path / "z.json"))


def test_a_checkpoint_converted_for_fine_tuning_has_no_head_and_is_never_run(tiny, tmp_path):
    from safetensors.numpy import save_file

    from mszoo.models.convert import convert_file

    ckpt = load_training_checkpoint(tiny["ckpt"])
    weights = {k: v for k, v in ckpt.tensors.items() if not k.startswith(("optimizer.", "loss_scale.", "ema."))}
    save_file(weights, str(tmp_path / "w.safetensors"))  # Twins keys are the same on the PyTorch side
    info = convert_file("twins_pcpvt_small", str(tmp_path / "w.safetensors"), str(tmp_path / "three.ckpt"),
                        num_classes=3, img_size=16, **{k: v for k, v in TINY.items()})
    assert info["dropped_head"] == ["head.bias", "head.weight"]
    with pytest.raises(CheckpointError, match=r"missing head\.bias, head\.weight"):
        predictions(["--pretrained", info["output"]], input=tiny["photos"], output=str(tmp_path / "h.json"))
    # converted as it is, the file carries its record: infer needs nothing else
    info = convert_file("twins_pcpvt_small", str(tmp_path / "w.safetensors"), str(tmp_path / "same.ckpt"),
                        img_size=16, **TINY)
    got = predictions(["--pretrained", info["output"], "--crop_pct", "1.0"], input=tiny["photos"],
                      output=str(tmp_path / "c.json"))
    new = predictions(["--pretrained", tiny["ckpt"]], input=tiny["photos"], output=str(tmp_path / "n.json"))
    assert {p: r["index"] for p, r in got.items()} == {p: r["index"] for p, r in new.items()}


def test_fine_tuning_takes_the_model_from_the_checkpoint_and_replaces_only_the_head(tiny, tmp_path):
    three = tmp_path / "three"
    for split in ("train", "val"):
        src = os.path.join(tiny["digits"], split)
        for digit in ("0", "1", "2"):
            shutil.copytree(os.path.join(src, digit), three / split / digit)
    run = script("train.py", "--pretrained", tiny["ckpt"], "--data_url", str(three), "--epochs", "1",
                 "--steps_per_epoch", "1", "--batch_size", "8", "--warmup_length", "0", "--cooldown_epochs", "0",
                 "--num_parallel_workers", "1", "--val_num_samples", "16", "--mixup", "0", "--cutmix", "0",
                 "--output_dir", str(tmp_path / "out"), "--run_name", "ft", "--progress", "false")
    assert run.returncode == 0, run.stdout + run.stderr
    assert ("new 3-class head for fine-tuning (the checkpoint's has 10 classes), re-initialised: head.bias, "
            "head.weight") in run.stdout
    record = load_training_checkpoint(str(tmp_path / "out" / "ft" / "last.ckpt")).record
    assert record["num_classes"] == 3 and record["model_kwargs"] == TINY and record["image_size"] == 16
    assert np.allclose(record["mean"], [0.485, 0.456, 0.406])
