"""eval.py --backend mindir|onnx gives the same metrics as eval.py on the checkpoint, same data."""
import json

import mindspore as ms
import pytest

import eval as eval_script
import export as export_script
from mszoo.data import prepare_digits
from mszoo.models import create_model
from tests.tiny import tiny_kwargs

# The scripts' main() sets MindSpore's mode as its own process would; PyNative is put back after each test.
pytestmark = pytest.mark.usefixtures("pynative")

ARCH = "t2t_vit_t_14"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evalx")
    cache = str(tmp / "cache")
    prepare_digits(cache, seed=0)
    kwargs = dict(tiny_kwargs(ARCH), img_size=16)
    ckpt = str(tmp / "tiny.ckpt")
    ms.save_checkpoint(create_model(ARCH, num_classes=10, **kwargs), ckpt,
                       append_dict={"class_names": json.dumps([str(i) for i in range(10)])})
    common = ["--arch", ARCH, "--num_classes", "10", "--image_size", "16", "--model_kwargs", json.dumps(kwargs),
              "--dataset", "digits", "--data_url", cache, "--batch_size", "50", "--val_num_samples", "120",
              "--crop_pct", "1.0", "--num_parallel_workers", "1"]
    for fmt in ("MINDIR", "ONNX"):
        assert export_script.main(common + ["--pretrained", ckpt, "--file_format", fmt,
                                            "--file_name", str(tmp / "tiny")]) == 0
    return tmp, common, ckpt


def _eval(tmp, argv, name):
    out = tmp / f"{name}.json"
    assert eval_script.main(argv + ["--output", str(out)]) == 0
    return json.loads(out.read_text())


def test_exported_files_evaluate_like_the_checkpoint(exported, capsys):
    tmp, common, ckpt = exported
    ref = _eval(tmp, common + ["--pretrained", ckpt], "ckpt")
    assert ref["num_samples"] == 120
    for backend, suffix in (("mindir", "mindir"), ("onnx", "onnx")):
        got = _eval(tmp, common + ["--backend", backend, "--model", str(tmp / f"tiny.{suffix}")], backend)
        assert got["num_samples"] == ref["num_samples"]
        assert got["top1"] == pytest.approx(ref["top1"], abs=1e-9)
        assert got["top5"] == pytest.approx(ref["top5"], abs=1e-9)
        assert got["loss"] == pytest.approx(ref["loss"], abs=1e-4)
    printed = capsys.readouterr().out
    assert printed.count("eval results: {'loss': ") == 3
