"""Export: every registered model to MINDIR and ONNX, equal to the checkpoint, with a dynamic batch."""
import json
import os

import mindspore as ms
import numpy as np
import pytest

from mszoo.config import parse_config
from mszoo.deploy.export import EXTENSIONS, ExportError, export_to_file, read_sidecar
from mszoo.models import create_model, list_models
from tests.conftest import TINY_SELF_DESCRIBING
from tests.deploy.conftest import FULL_SIZE, export_with_reference
from tests.tiny import tiny_graph_groups, tiny_kwargs

ALL_MODELS = list_models()


EXPORT_GROUPS = tiny_graph_groups()


@pytest.fixture(scope="module", autouse=True)
def _full_size_exports_meanwhile(full_size_exports):
    """The full-size exports (minutes of mostly single-core compiling) start with this module, beside its tiny
    tests, instead of when test_full_size_model_exports_match_checkpoint first asks for them."""
    full_size_exports.start()


def _cfg(arch, image_size, num_classes, **extra):
    argv = ["--arch", arch, "--image_size", str(image_size), "--num_classes", str(num_classes)]
    for key, value in extra.items():
        argv += [f"--{key}", str(value)]
    cfg, _ = parse_config(argv)
    return cfg


def _onnx_run(path, x):
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _check_exports(exported, num_classes):
    """The ONNX and (where exported) MINDIR files of ``export_with_reference`` give the model's logits within 1e-4
    at every batch size; returns the largest difference."""
    import onnx

    onnx_model = onnx.load(exported["onnx"])
    onnx.checker.check_model(onnx_model)
    # every GELU's erf is one Erf node again (none left as the slow elementwise approximation)
    op_types = [node.op_type for node in onnx_model.graph.node]
    assert op_types.count("Erf") == exported["cell_types"].count("GELU") and "Where" not in op_types
    graph = ms.nn.GraphCell(ms.load(exported["mindir"])) if exported["mindir"] else None
    worst = 0.0
    for x, expected in zip(exported["inputs"], exported["expected"]):
        assert expected.shape == (x.shape[0], num_classes)
        outputs = [_onnx_run(exported["onnx"], x)] + ([graph(ms.Tensor(x)).asnumpy()] if graph else [])
        for out in outputs:
            worst = max(worst, np.abs(out - expected).max())
            np.testing.assert_allclose(out, expected, atol=1e-4, rtol=0)
    return worst


def test_the_export_groups_cover_every_registered_model():
    assert sorted(a for members in EXPORT_GROUPS.values() for a in members) == ALL_MODELS
    assert len(EXPORT_GROUPS) >= 6  # PCPVT, SVT, TNT, legacy TNT, performer and transformer T2T-ViT


@pytest.mark.parametrize("arch", sorted(EXPORT_GROUPS), ids=lambda a: "+".join(EXPORT_GROUPS[a]))
def test_every_model_exports_to_mindir_and_onnx_with_dynamic_batch(arch, tmp_path):
    """One export per distinct tiny graph stands for every registered model with that graph."""
    kwargs = tiny_kwargs(arch)
    size = kwargs["img_size"]
    model = create_model(arch, num_classes=4, **kwargs)
    cfg = _cfg(arch, size, 4, model_kwargs=json.dumps(kwargs))
    _check_exports(export_with_reference(model, cfg, str(tmp_path), (1, 3)), 4)


@pytest.mark.parametrize("arch", FULL_SIZE)
def test_full_size_model_exports_match_checkpoint(arch, full_size_exports):
    """The full-size ONNX exports (tests/deploy/conftest.py; test_openvino.py runs them under OpenVINO too)."""
    assert _check_exports(full_size_exports(arch), 1000) < 1e-4


def test_one_model_exports_to_every_format_in_one_process(tmp_path):
    """MINDIR, ONNX and OPENVINO from one model object each give the model's eval logits. The OPENVINO export is an
    ONNX export after an ONNX one, which used to crash inside MindSpore (``i: 3 out of range``)."""
    from mszoo.deploy import ov_runtime

    model = create_model("twins_pcpvt_small", num_classes=4, img_size=16, **TINY_SELF_DESCRIBING)
    cfg = _cfg("twins_pcpvt_small", 16, 4, model_kwargs=json.dumps(TINY_SELF_DESCRIBING))
    model.set_train(False)
    x = np.random.RandomState(0).randn(2, 3, 16, 16).astype(np.float32)
    expected = model(ms.Tensor(x)).asnumpy()
    run = {"MINDIR": lambda path: ms.nn.GraphCell(ms.load(path))(ms.Tensor(x)).asnumpy(),
           "ONNX": lambda path: _onnx_run(path, x),
           "OPENVINO": lambda path: ov_runtime.compile_model(path, "f32")(x)}
    for i, fmt in enumerate(("MINDIR", "ONNX", "OPENVINO")):
        path = export_to_file(model, cfg, fmt, str(tmp_path / f"m{i}{EXTENSIONS[fmt]}"))
        np.testing.assert_allclose(run[fmt](path), expected, atol=1e-4, rtol=0, err_msg=f"export {i}: {fmt}")


def test_exported_model_uses_exact_gelu_again_afterwards(tmp_path):
    from mszoo.models.layers import GELU

    model = create_model("twins_pcpvt_small", num_classes=4, **tiny_kwargs("twins_pcpvt_small"))
    cfg = _cfg("twins_pcpvt_small", 32, 4)
    export_to_file(model, cfg, "MINDIR", str(tmp_path / "m.mindir"))
    gelus = [c for _, c in model.cells_and_names() if isinstance(c, GELU)]
    assert gelus and not any(g.exportable for g in gelus)


def test_a_model_left_in_training_mode_exports_its_inference_graph(tmp_path):
    """No dropout or drop path in the file: it gives the eval-mode logits, the same on every run."""
    kwargs = tiny_kwargs("twins_pcpvt_small")
    model = create_model("twins_pcpvt_small", num_classes=4, drop_rate=0.5, drop_path_rate=0.5, **kwargs)
    model.set_train(True)
    path = export_to_file(model, _cfg("twins_pcpvt_small", 32, 4), "MINDIR", str(tmp_path / "m.mindir"))
    assert not model.training  # left in eval mode, as exported
    x = ms.Tensor(np.random.RandomState(0).randn(4, 3, 32, 32).astype(np.float32))
    expected = model(x).asnumpy()
    graph = ms.nn.GraphCell(ms.load(path))
    for _ in range(2):
        np.testing.assert_allclose(graph(x).asnumpy(), expected, atol=1e-5, rtol=0)


def test_sidecar_records_preprocessing_and_class_names(tmp_path):
    model = create_model("tnt_s_patch16_224", num_classes=3, **tiny_kwargs("tnt_s_patch16_224"))
    cfg = _cfg("tnt_s_patch16_224", 32, 3, crop_pct=0.9, mean="0.5,0.5,0.5", std="0.5,0.5,0.5")
    path = export_to_file(model, cfg, "MINDIR", str(tmp_path / "tnt.mindir"), class_names=["cat", "dog", "owl"])
    meta = read_sidecar(path)
    assert meta["class_names"] == ["cat", "dog", "owl"]
    assert meta["image_size"] == 32 and meta["crop_pct"] == 0.9 and meta["interpolation"] == "bicubic"
    assert meta["mean"] == [0.5, 0.5, 0.5] and meta["std"] == [0.5, 0.5, 0.5]
    assert meta["batch_size"] is None  # dynamic batch axis
    assert os.path.basename(path) == "tnt.mindir"


def test_air_needs_ascend(tmp_path):
    model = create_model("twins_pcpvt_small", num_classes=4, **tiny_kwargs("twins_pcpvt_small"))
    cfg = _cfg("twins_pcpvt_small", 32, 4)
    with pytest.raises(ExportError, match="AIR export needs an Ascend device"):
        export_to_file(model, cfg, "AIR", str(tmp_path / "m.air"))
