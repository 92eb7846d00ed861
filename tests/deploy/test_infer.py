"""infer.py on three backends: same predictions, mixed formats, unreadable files reported and skipped."""
import json
import os

import mindspore as ms
import numpy as np
import pytest
from PIL import Image

import export as export_script
import infer as infer_script
from mszoo.models import create_model
from tests.tiny import tiny_kwargs

# The scripts' main() sets MindSpore's mode as its own process would; PyNative is put back after each test.
pytestmark = pytest.mark.usefixtures("pynative")

ARCH = "twins_pcpvt_small"
CLASSES = ["apple", "banana", "cherry"]


def _make_images(root):
    rng = np.random.RandomState(0)
    os.makedirs(root / "sub", exist_ok=True)
    rgb = lambda h, w: Image.fromarray(rng.randint(0, 255, (h, w, 3), dtype=np.uint8))
    rgb(40, 50).save(root / "a.jpg", quality=90)
    Image.fromarray(rng.randint(0, 255, (30, 30, 4), dtype=np.uint8)).save(root / "b_alpha.png")
    Image.fromarray(rng.randint(0, 255, (36, 36), dtype=np.uint8)).save(root / "sub" / "c_gray.png")
    rgb(33, 41).convert("P", palette=Image.ADAPTIVE).save(root / "sub" / "d_palette.png")
    rgb(32, 32).convert("CMYK").save(root / "e_cmyk.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (root / "notes.txt").write_text("not an image")
    return 5  # readable images


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A tiny checkpoint with class names, its MINDIR and ONNX exports, and a folder of images."""
    tmp = tmp_path_factory.mktemp("infer")
    kwargs = tiny_kwargs(ARCH)
    model = create_model(ARCH, num_classes=3, **kwargs)
    ckpt = str(tmp / "tiny.ckpt")
    ms.save_checkpoint(model, ckpt, append_dict={"class_names": json.dumps(CLASSES)})
    common = ["--arch", ARCH, "--num_classes", "3", "--image_size", "32", "--model_kwargs", json.dumps(kwargs),
              "--pretrained", ckpt, "--batch_size", "4"]
    for fmt in ("MINDIR", "ONNX"):
        assert export_script.main(common + ["--file_format", fmt, "--file_name", str(tmp / "tiny")]) == 0
    images = tmp / "images"
    n = _make_images(images)
    return dict(tmp=tmp, common=common, images=images, n=n)


def _infer(deployed, backend, capsys, **extra):
    out = deployed["tmp"] / f"pred_{backend}.json"
    argv = deployed["common"] + ["--input", str(deployed["images"]), "--output", str(out), "--backend", backend]
    if backend != "mindspore":
        argv += ["--model", str(deployed["tmp"] / ("tiny.mindir" if backend == "mindir" else "tiny.onnx"))]
    for key, value in extra.items():
        argv += [f"--{key}", str(value)]
    assert infer_script.main(argv) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def test_three_backends_give_the_same_predictions(deployed, capsys):
    results = {b: _infer(deployed, b, capsys)[0] for b in ("mindspore", "mindir", "onnx")}
    ref = results["mindspore"]
    assert len(ref) == deployed["n"]
    for backend in ("mindir", "onnx"):
        assert results[backend].keys() == ref.keys()
        for path, rec in ref.items():
            assert results[backend][path]["index"] == rec["index"], (backend, path)
            assert abs(results[backend][path]["prob"] - rec["prob"]) < 1e-4


def test_json_records_class_index_prob_and_top5(deployed, capsys):
    preds, _ = _infer(deployed, "onnx", capsys)
    rec = preds[str(deployed["images"] / "a.jpg")]
    assert set(rec) == {"class", "index", "prob", "top5"}
    assert rec["class"] == CLASSES[rec["index"]]  # names from the checkpoint, via the export sidecar
    assert len(rec["top5"]) == 3  # only 3 classes
    probs = [t["prob"] for t in rec["top5"]]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-5
    assert rec["top5"][0]["index"] == rec["index"]


def test_unreadable_files_are_reported_and_the_rest_classified(deployed, capsys):
    preds, printed = _infer(deployed, "mindspore", capsys)
    broken = str(deployed["images"] / "broken.jpg")
    assert broken not in preds
    assert f"{broken}: skipped" in printed
    assert f"{deployed['images'] / 'notes.txt'}: skipped" in printed
    assert "skipped 2 unreadable file(s)" in printed
    lines = [line for line in printed.splitlines() if line.startswith(str(deployed["images"]))]
    order = [line.split(":")[0] for line in lines]
    assert order == sorted(order, key=lambda p: (os.path.dirname(p) != str(deployed["images"]), p))


def test_printed_line_format(deployed, capsys):
    _, printed = _infer(deployed, "mindspore", capsys)
    line = next(line for line in printed.splitlines() if line.startswith(str(deployed["images"] / "a.jpg")))
    name, prob = line.split(": ", 1)[1].rsplit(" (", 1)
    assert name in CLASSES and 0 < float(prob.rstrip(")")) <= 1


def test_class_names_file_overrides(deployed, capsys):
    names = deployed["tmp"] / "names.txt"
    names.write_text("x\ny\nz\n")
    preds, _ = _infer(deployed, "mindir", capsys, class_names=names)
    assert {rec["class"] for rec in preds.values()} <= {"x", "y", "z"}


def test_missing_input_and_model_are_clear_errors(deployed):
    from mszoo.deploy.infer import InferenceError

    with pytest.raises(InferenceError, match="--input not found"):
        infer_script.main(deployed["common"] + ["--input", "/nonexistent/dir"])
    with pytest.raises(InferenceError, match="needs --model FILE"):
        infer_script.main(deployed["common"] + ["--input", str(deployed["images"]), "--backend", "onnx"])
