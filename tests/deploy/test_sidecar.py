"""One sidecar per exported file: NAME.mindir, NAME.onnx and NAME.xml exported under one name each keep their own
record (NAME.mindir.json ...); the NAME.json older versions shared is still read, for the format it records."""
import json

from mszoo.deploy.export import find_sidecar, read_sidecar, write_sidecar
from mszoo.models.record import make_record


def _meta(file_format, precision="f32", num_classes=3):
    record = make_record("twins_pcpvt_small", num_classes, 32, 0.9, "bicubic", [0.5] * 3, [0.5] * 3)
    return dict(record, file_format=file_format, batch_size=None, precision=precision)


def test_exports_under_one_name_never_overwrite_each_others_record(tmp_path):
    # an int8 IR, then a float32 ONNX and a MindIR of another model, all named m
    files = {fmt: str(tmp_path / f"m{ext}") for fmt, ext in (("OPENVINO", ".xml"), ("ONNX", ".onnx"),
                                                             ("MINDIR", ".mindir"))}
    write_sidecar(files["OPENVINO"], _meta("OPENVINO", precision="int8"))
    write_sidecar(files["ONNX"], _meta("ONNX"))
    write_sidecar(files["MINDIR"], _meta("MINDIR", num_classes=5))
    assert read_sidecar(files["OPENVINO"])["precision"] == "int8"
    assert read_sidecar(files["ONNX"])["file_format"] == "ONNX"
    assert read_sidecar(files["MINDIR"])["num_classes"] == 5
    assert find_sidecar(files["ONNX"]) == files["ONNX"] + ".json"


def test_an_older_shared_sidecar_is_read_for_the_format_it_records(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps(_meta("ONNX")))
    assert read_sidecar(str(tmp_path / "m.onnx"))["file_format"] == "ONNX"
    # it describes m.onnx, not m.mindir exported earlier under the same name
    assert read_sidecar(str(tmp_path / "m.mindir")) is None
    # a file's own sidecar wins over the shared one
    write_sidecar(str(tmp_path / "m.onnx"), _meta("ONNX", num_classes=7))
    assert read_sidecar(str(tmp_path / "m.onnx"))["num_classes"] == 7
