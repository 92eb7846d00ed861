"""OpenVINO backend: every family runs in f32 like the checkpoint, bf16/int8 only when asked (and possible),
infer/eval/export/benchmark with --backend openvino, and one clear line for each user error."""
import json
import os

import numpy as np
import pytest

from mszoo.config import parse_config
from mszoo.deploy import ov_runtime
from mszoo.deploy.export import export_model, openvino_from_onnx, read_sidecar
from mszoo.deploy.infer import InferenceError, evaluate_exported, infer_images
from tests.conftest import script
from tests.deploy.conftest import FULL_SIZE


@pytest.fixture(scope="module")
def exported(trained_tiny, tmp_path_factory):
    """The tiny trained checkpoint as ONNX, as an f32 IR and as an int8 IR (calibrated on digits train)."""
    out = tmp_path_factory.mktemp("openvino")
    for fmt, name, extra in (("ONNX", "m", {}), ("OPENVINO", "m_ir", {}),
                             ("OPENVINO", "m_int8", {"precision": "int8",
                                                     "calib_data": os.path.join(trained_tiny["digits"], "train")})):
        cfg, _ = parse_config(["--pretrained", trained_tiny["ckpt"], "--file_format", fmt,
                               "--file_name", str(out / name)])
        assert export_model(cfg, **extra) == 0
    return {"onnx": str(out / "m.onnx"), "ir": str(out / "m_ir.xml"), "int8": str(out / "m_int8.xml"),
            **trained_tiny}


def predictions(tmp_path, argv=(), **kwargs):
    out = str(tmp_path / f"p{len(os.listdir(tmp_path))}.json")
    cfg, _ = parse_config(list(argv))
    assert infer_images(cfg, output=out, **kwargs) == 0
    with open(out) as f:
        return json.load(f)


@pytest.mark.parametrize("arch", FULL_SIZE)
def test_every_family_runs_under_openvino_f32_within_1e4_of_the_checkpoint(arch, full_size_exports, tmp_path):
    """The family's full-size ONNX export (tests/deploy/conftest.py, shared with test_export.py) converted to an
    f32 IR as export.py's OPENVINO format converts it."""
    exported = full_size_exports(arch)
    path = openvino_from_onnx(exported["onnx"], str(tmp_path / "m.xml"))
    run = ov_runtime.compile_model(path, "f32")
    for x, expected in zip(exported["inputs"], exported["expected"]):
        np.testing.assert_allclose(run(x), expected, atol=1e-4, rtol=0)
    # compiled once per batch shape, with the shape fixed (what lets OpenVINO fuse the element-wise ops)
    assert sorted(run.compiled) == sorted(x.shape for x in exported["inputs"])
    assert all(c.inputs[0].get_partial_shape().is_static for c in run.compiled.values())
    # the exported LayerNorms are in the form OpenVINO fuses: one MVN kernel each, none left as Reduce ops
    compiled = ov_runtime._core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    kinds = [op.get_rt_info()["layerType"].astype(str) for op in compiled.get_runtime_model().get_ops()]
    assert kinds.count("MVN") == exported["cell_types"].count("LayerNorm") > 0


def test_export_writes_each_ir_with_its_weights_and_a_sidecar_naming_its_precision(exported):
    for key, precision in (("ir", "f32"), ("int8", "int8")):
        assert os.path.isfile(os.path.splitext(exported[key])[0] + ".bin")
        assert read_sidecar(exported[key])["precision"] == precision


def _op_kinds(xml):
    """(operation types, element types of the constants) of an IR as read, before any compilation."""
    model = ov_runtime._core().read_model(xml)
    ops = model.get_ops()
    return [op.get_type_name() for op in ops], {op.get_element_type().get_type_name() for op in ops
                                                 if op.get_type_name() == "Constant"}


def test_int8_ir_holds_quantized_operations_and_computes_other_numbers_than_the_f32_ir(exported):
    """An "int8" IR that is the f32 graph under another name must fail: NNCF's quantization leaves FakeQuantize
    operations on the activations and int8 weight constants, which the f32 IR has none of."""
    kinds8, consts8 = _op_kinds(exported["int8"])
    kinds32, consts32 = _op_kinds(exported["ir"])
    assert kinds8.count("FakeQuantize") >= 4 and "i8" in consts8, (sorted(set(kinds8)), consts8)
    assert "FakeQuantize" not in kinds32 and "i8" not in consts32
    x = np.random.RandomState(0).rand(4, 3, 16, 16).astype(np.float32)
    f32 = ov_runtime.compile_model(exported["ir"], "f32")(x)
    int8 = ov_runtime.compile_model(exported["int8"], "int8")(x)
    assert np.abs(int8 - f32).max() > 1e-3 * np.abs(f32).max()


@pytest.mark.parametrize("native_bf16, rest", [(True, "bf16"), (False, "f32")])
def test_int8_runs_its_float_operations_in_bf16_only_where_the_cpu_has_native_bf16(monkeypatch, native_bf16, rest):
    monkeypatch.setattr(ov_runtime, "cpu_has_bf16", lambda: native_bf16)
    assert ov_runtime.inference_precision("int8") == rest
    assert (ov_runtime.inference_precision("f32"), ov_runtime.inference_precision("bf16")) == ("f32", "bf16")


def test_a_compiled_int8_model_computes_its_float_part_in_the_precision_the_rule_names(exported):
    x = np.random.RandomState(0).rand(2, 3, 16, 16).astype(np.float32)
    run = ov_runtime.compile_model(exported["int8"], "int8")
    run(x)
    (compiled,) = run.compiled.values()
    assert compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == ov_runtime.int8_rest_precision()
    if ov_runtime.cpu_has_bf16():  # the float part really is bf16: not the int8 model with an f32 rest
        f32_rest = ov_runtime._core().compile_model(exported["int8"], "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        assert np.abs(run(x) - f32_rest(x)[0]).max() > 1e-5


PRECISION_PROBE = r"""
import json, sys
import numpy as np, onnxruntime
sys.path.insert(0, {root!r})
from mszoo.deploy import ov_runtime
x = np.random.RandomState(0).rand(4, 3, 16, 16).astype(np.float32)
sess = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
ref = sess.run(None, {{sess.get_inputs()[0].name: x}})[0]
out = {{"bf16_cpu": ov_runtime.cpu_has_bf16()}}
for precision in ("f32", "bf16") if out["bf16_cpu"] else ("f32",):
    out[precision] = float(np.abs(ov_runtime.compile_model(sys.argv[2], precision)(x) - ref).max())
print("DIFFS " + json.dumps(out))
"""


def test_f32_really_computes_in_f32_on_a_cpu_with_native_bf16(exported):
    """In a process without the oneDNN cap (as infer.py/eval.py run OpenVINO), where OpenVINO's own default on
    this CPU would be bf16: f32 stays within 1e-4 of onnxruntime, bf16 visibly does not."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    run = subprocess.run([sys.executable, "-c", PRECISION_PROBE.format(root=os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))), exported["onnx"], exported["ir"]], capture_output=True,
        text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    diffs = json.loads(next(x for x in run.stdout.splitlines() if x.startswith("DIFFS "))[6:])
    assert diffs["f32"] < 1e-4
    if diffs["bf16_cpu"]:
        assert diffs["bf16"] > 1e-4


def test_openvino_runs_uncapped_in_a_process_where_mindspore_capped_onednn(exported, monkeypatch):
    """Where the entry points cap oneDNN for MindSpore (mszoo/cpu/onednn.py: some AVX-512 CPUs), OpenVINO's own
    oneDNN must not inherit the cap: bf16 kernels exist (they do not under the cap) and f32 stays exact. The cap is
    set here whatever this CPU's rule says."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    x = np.random.RandomState(0).rand(4, 3, 16, 16).astype(np.float32)
    f32 = ov_runtime.compile_model(exported["ir"], "f32")(x)
    onnx = __import__("onnxruntime").InferenceSession(exported["onnx"], providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(f32, onnx.run(None, {onnx.get_inputs()[0].name: x})[0], atol=1e-4, rtol=0)
    if ov_runtime.cpu_has_bf16():
        assert np.abs(ov_runtime.compile_model(exported["ir"], "bf16")(x) - f32).max() > 1e-4
    assert os.environ.get("ONEDNN_MAX_CPU_ISA") == "AVX2"  # put back for MindSpore


@pytest.mark.parametrize("which", ["onnx", "ir"])
def test_infer_with_openvino_reads_our_onnx_or_ir_and_equals_the_checkpoint(exported, tmp_path, which):
    ours = predictions(tmp_path, ["--pretrained", exported["ckpt"]], input=exported["photos"])
    ov = predictions(tmp_path, input=exported["photos"], backend="openvino", model=exported[which])
    assert ours.keys() == ov.keys()
    for path, rec in ours.items():
        assert ov[path]["class"] == rec["class"] and ov[path]["prob"] == pytest.approx(rec["prob"], abs=1e-5)


def test_eval_with_openvino_equals_the_checkpoint_and_int8_stays_close_to_f32(exported, tmp_path):
    def evaluate(**kwargs):
        out = tmp_path / f"e{len(os.listdir(tmp_path))}.json"
        cfg, _ = parse_config(["--dataset", "digits", "--data_url", os.path.dirname(exported["digits"]),
                               "--batch_size", "50", "--num_parallel_workers", "1"])
        assert evaluate_exported(cfg, output=str(out), backend="openvino", **kwargs) == 0
        return json.loads(out.read_text())

    f32 = evaluate(model_file=exported["ir"])
    onnx = evaluate(model_file=exported["onnx"])
    assert f32["num_samples"] == 360 and f32["top1"] == onnx["top1"]
    int8 = evaluate(model_file=exported["int8"])  # the int8 IR from export.py
    assert abs(int8["top1"] - f32["top1"]) <= 5.0, (int8, f32)
    on_the_fly = evaluate(model_file=exported["onnx"], precision="int8",
                          calib_data=os.path.join(exported["digits"], "train"))
    assert on_the_fly["precision"] == "int8" and on_the_fly["f32"]["top1"] == f32["top1"]
    assert on_the_fly["top1_agreement"] >= 80.0, (on_the_fly, int8)


def test_user_errors_are_one_line(exported, tmp_path):
    garbage = tmp_path / "bad.xml"
    garbage.write_text("<net>not a model")
    run = script("infer.py", "--backend", "openvino", "--model", str(garbage), "--arch", "twins_pcpvt_small",
                 "--input", exported["photos"])
    assert run.returncode == 1 and run.stderr.strip().startswith("error: OpenVINO cannot read ")
    assert len(run.stderr.strip().splitlines()) == 1
    with pytest.raises(InferenceError, match="needs --calib_data DIR"):
        predictions(tmp_path, input=exported["photos"], backend="openvino", model=exported["onnx"], precision="int8")
    with pytest.raises(InferenceError, match="--precision bf16 needs --backend openvino"):
        predictions(tmp_path, input=exported["photos"], backend="onnx", model=exported["onnx"], precision="bf16")
    calib = os.path.join(exported["digits"], "train")
    with pytest.raises(InferenceError, match="--calib_data is only used to quantize a float model"):
        predictions(tmp_path, input=exported["photos"], backend="openvino", model=exported["onnx"], calib_data=calib)
    with pytest.raises(InferenceError, match=r"m_int8.xml runs in int8 as exported"):
        predictions(tmp_path, input=exported["photos"], backend="openvino", model=exported["int8"],
                    precision="int8", calib_data=calib)
    exported_f32 = script("export.py", "--pretrained", exported["ckpt"], "--file_format", "OPENVINO",
                          "--file_name", str(tmp_path / "x"), "--calib_data", calib)
    assert exported_f32.returncode != 0 and "--calib_data is only used to quantize" in exported_f32.stderr
    run = script("eval.py", "--pretrained", exported["ckpt"], "--precision", "int8")
    assert run.returncode == 2 and "precision: int8 needs --backend openvino" in run.stderr


def test_benchmark_plans_openvino_precisions_and_compares_timm_like_with_like():
    from mszoo.tools.benchmark import add_ratios, build_parser, plan_cases

    args = build_parser().parse_args(["--model", "twins_svt_small", "--mode", "infer", "--batch_size", "8",
                                      "--backend", "onnx,openvino", "--precision", "f32,bf16,int8",
                                      "--compare", "timm"])
    cases = plan_cases(args)
    assert [(c["impl"], c["backend"], c["precision"]) for c in cases] == [
        ("ours", "onnx", "f32"), ("ours", "openvino", "f32"), ("ours", "openvino", "bf16"),
        ("ours", "openvino", "int8"), ("timm", "torch", "bf16"), ("timm", "torch", "f32")]
    rates = (10.0, 15.0, 30.0, 25.0, 20.0, 10.0)
    rows = [dict(c, result={"images_per_s": rate}) for c, rate in zip(cases, rates)]
    # bf16 against timm bf16 (autocast), int8 against timm float32
    assert [r.get("ratio") for r in add_ratios(rows)] == [1.0, 1.5, 1.5, 2.5, None, None]


def test_benchmark_int8_case_times_a_quantized_model(exported):
    from mszoo.tools.benchmark import _openvino_runner

    x = np.random.RandomState(0).randn(4, 3, 16, 16).astype(np.float32)
    case = {"precision": "int8", "threads": 2}
    int8 = _openvino_runner(exported["onnx"], case, x)(x)
    f32 = _openvino_runner(exported["onnx"], dict(case, precision="f32"), x)(x)
    assert 0 < np.abs(int8 - f32).max() < 0.5 * np.abs(f32).max()  # quantized, and still the same model
