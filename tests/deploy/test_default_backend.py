"""eval.py / infer.py's default backend: OpenVINO f32 on CPU from an IR exported once and cached by the checkpoint's
hash (exact, never stale, never half-written), MindSpore elsewhere or without OpenVINO; the run says which."""
import json
import logging
import os
import shutil
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from PIL import Image

import eval as eval_script
import infer as infer_script
from mszoo.config import parse_config
from mszoo.deploy import ir_cache
from mszoo.fileio import sha256_file
from mszoo.models import create_model
from mszoo.tools.fast_path import choose_backend
from tests.tiny import tiny_kwargs

# The scripts' main() sets MindSpore's mode as its own process would; PyNative is put back after each test.
pytestmark = pytest.mark.usefixtures("pynative")

ARCH = "twins_pcpvt_small"
CLASSES = ["apple", "banana", "cherry"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _save_checkpoint(path, seed):
    ms.set_seed(seed)
    model = create_model(ARCH, num_classes=3, **tiny_kwargs(ARCH))
    ms.save_checkpoint(model, str(path), append_dict={"class_names": json.dumps(CLASSES)})


def _images(root, n=6):
    rng = np.random.RandomState(0)
    for i in range(n):
        folder = root / CLASSES[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.randint(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / f"{i}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """A tiny checkpoint, a folder of photos and an IR cache of its own; the first default infer.py run (which
    exports) is made here, once for the module."""
    tmp = tmp_path_factory.mktemp("default_backend")
    ckpt = tmp / "tiny.ckpt"
    _save_checkpoint(ckpt, seed=1)
    images = _images(tmp / "photos")
    argv = ["--arch", ARCH, "--image_size", "32", "--model_kwargs", json.dumps(tiny_kwargs(ARCH)),
            "--pretrained", str(ckpt), "--batch_size", "4", "--input", str(images)]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MSZOO_BACKEND")
        mp.setenv("MSZOO_CACHE", str(tmp / "cache"))
        first = _infer(argv, tmp / "first.json")
    return dict(tmp=tmp, ckpt=ckpt, images=images, argv=argv, first=first, cache=tmp / "cache")


@pytest.fixture
def default_env(default_run, monkeypatch):
    monkeypatch.delenv("MSZOO_BACKEND")
    monkeypatch.setenv("MSZOO_CACHE", str(default_run["cache"]))
    return default_run


def _infer(argv, out):
    from mszoo.logger import get_logger

    lines = []
    handler = _ListHandler(lines)
    get_logger().addHandler(handler)
    try:
        assert infer_script.main(argv + ["--output", str(out)]) == 0
    finally:
        get_logger().removeHandler(handler)
    return json.loads(out.read_text()), lines


class _ListHandler(logging.Handler):
    def __init__(self, lines):
        super().__init__()
        self.lines = lines

    def emit(self, record):
        self.lines.append(record.getMessage())


def _backend_line(lines):
    found = [line for line in lines if line.startswith("backend: ")]
    assert len(found) == 1, lines
    return found[0]


def _entries(cache):
    return sorted(p for p in os.listdir(cache / "ir") if not p.startswith("."))


def test_default_infer_on_cpu_runs_openvino_from_an_ir_exported_once_then_cached(default_env, tmp_path):
    first, first_lines = default_env["first"]
    assert "openvino f32" in _backend_line(first_lines) and "IR exported" in _backend_line(first_lines)
    again, lines = _infer(default_env["argv"], tmp_path / "again.json")
    assert "IR cached" in _backend_line(lines)
    assert not any(line.startswith("exporting") for line in lines)
    assert again == first
    assert len(_entries(default_env["cache"])) == 1


def test_cached_ir_logits_are_within_1e4_of_mindspore(default_env):
    from mszoo.deploy.ov_runtime import compile_model

    cfg, _ = parse_config(default_env["argv"][:-2])
    key = ir_cache.entry_key(cfg, sha256_file(default_env["ckpt"]))
    ir, record = ir_cache.lookup(key)
    assert record["class_names"] == CLASSES
    model = create_model(ARCH, num_classes=3, **tiny_kwargs(ARCH))
    ms.load_param_into_net(model, ms.load_checkpoint(str(default_env["ckpt"])))
    model.set_train(False)
    x = np.random.RandomState(3).randn(5, 3, 32, 32).astype(np.float32)
    expected = model(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(compile_model(ir)(x), expected, atol=1e-4, rtol=0)


def test_a_changed_checkpoint_is_exported_again_and_never_runs_stale(default_env, tmp_path):
    ckpt = tmp_path / "changing.ckpt"
    shutil.copy(default_env["ckpt"], ckpt)
    argv = [a if a != str(default_env["ckpt"]) else str(ckpt) for a in default_env["argv"]]
    _infer(argv, tmp_path / "old.json")  # the first version: a cache hit (same bytes, same settings)
    _save_checkpoint(ckpt, seed=2)  # same path, new weights
    preds, lines = _infer(argv, tmp_path / "new.json")
    assert "IR exported" in _backend_line(lines)
    reference, ms_lines = _infer(argv + ["--backend", "mindspore"], tmp_path / "ref.json")
    assert _backend_line(ms_lines).startswith("backend: mindspore (--backend")  # the old path, on request
    for path, rec in reference.items():
        assert abs(preds[path]["prob"] - rec["prob"]) < 1e-4
    old = default_env["first"][0]
    assert any(abs(preds[p]["prob"] - old[p]["prob"]) > 1e-3 for p in preds)


def test_an_entry_left_incomplete_by_a_killed_export_is_never_used(default_env):
    key = _entries(default_env["cache"])[0]
    assert ir_cache.lookup(key) is not None
    for broken, damage in (("a" * 32, "no sidecar"), ("b" * 32, "bad sidecar"), ("c" * 32, "no weights")):
        shutil.copytree(default_env["cache"] / "ir" / key, default_env["cache"] / "ir" / broken)
        entry = default_env["cache"] / "ir" / broken
        if damage == "no sidecar":
            os.remove(entry / "model.xml.json")
        elif damage == "bad sidecar":
            (entry / "model.xml.json").write_text('{"arch": ')
        else:
            os.remove(entry / "model.bin")
        assert ir_cache.lookup(broken) is None, damage
        shutil.rmtree(entry)


def test_cache_key_follows_the_checkpoint_settings_and_versions(default_env, monkeypatch):
    cfg, _ = parse_config(default_env["argv"][:-2])
    key = ir_cache.entry_key(cfg, sha256_file(default_env["ckpt"]))
    assert ir_cache.entry_key(parse_config(default_env["argv"][:-2])[0], sha256_file(default_env["ckpt"])) == key
    other_size, _ = parse_config(default_env["argv"][:-2] + ["--crop_pct", "0.95"])
    assert ir_cache.entry_key(other_size, sha256_file(default_env["ckpt"])) != key
    monkeypatch.setattr(ir_cache, "_version", lambda dist: "9.9" if dist == "openvino" else None)
    assert ir_cache.entry_key(cfg, sha256_file(default_env["ckpt"])) != key


def test_a_cached_run_imports_no_mindspore(default_env):
    code = ("import sys; from mszoo.tools.infer import main; code = main(sys.argv[1:]); "
            "print('MINDSPORE_IMPORTED', 'mindspore' in sys.modules); sys.exit(code)")
    env = {k: v for k, v in os.environ.items() if k != "MSZOO_BACKEND"}
    env.update(MSZOO_CACHE=str(default_env["cache"]), GLOG_v="3")
    out = subprocess.run([sys.executable, "-c", code, *default_env["argv"]], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "IR cached" in out.stdout
    assert "MINDSPORE_IMPORTED False" in out.stdout


def test_default_eval_uses_the_cached_ir_and_agrees_with_mindspore(default_env, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(default_env["images"], data / "val")
    argv = [a for a in default_env["argv"][:-2]] + ["--data_url", str(data)]
    results = {}
    for backend in ("auto", "mindspore"):
        out = tmp_path / f"{backend}.json"
        assert eval_script.main(argv + ["--backend", backend, "--output", str(out)]) == 0
        results[backend] = json.loads(out.read_text())
    assert results["auto"]["top1"] == results["mindspore"]["top1"]
    assert abs(results["auto"]["loss"] - results["mindspore"]["loss"]) < 1e-4
    assert len(_entries(default_env["cache"])) >= 1


def _args(**kw):
    from mszoo.config import Config

    return Config(dict(dict(backend="auto", model=None, precision="f32"), **kw))


def test_gpu_and_ascend_keep_mindspore_and_a_cpu_without_openvino_says_so(monkeypatch, caplog):
    cfg, _ = parse_config(["--device_target", "GPU"])
    assert choose_backend(cfg, _args(), environ={})[0] == "mindspore"
    cfg.device_target = "Ascend"
    assert choose_backend(cfg, _args(), environ={})[0] == "mindspore"
    cfg.device_target = "CPU"
    assert choose_backend(cfg, _args(), environ={})[0] == "openvino"
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if the extra were not installed
    caplog.set_level("INFO")
    assert choose_backend(cfg, _args(), environ={})[0] == "mindspore"
    assert 'pip install "mszoo[openvino]"' in caplog.text
    assert choose_backend(cfg, _args(backend="onnx"), environ={})[0] == "onnx"
    assert choose_backend(cfg, _args(model="x.onnx"), environ={})[0] == "onnx"


def test_staging_folders_left_by_killed_exports_are_cleared_after_a_day(monkeypatch, tmp_path):
    monkeypatch.setenv("MSZOO_CACHE", str(tmp_path))
    old, recent = tmp_path / "ir" / ".export-old", tmp_path / "ir" / ".export-recent"
    for folder in (old, recent):
        folder.mkdir(parents=True)
        (folder / "model.xml").write_text("<net/>")
    day_ago = os.path.getmtime(recent) - ir_cache.STALE_STAGING_S - 60
    os.utime(old, (day_ago, day_ago))
    fresh = ir_cache.staging_dir()
    assert not old.exists() and recent.exists() and os.path.isdir(fresh)  # an export under way keeps its folder


def test_a_checkpoint_rewritten_during_its_export_is_refused(tmp_path):
    ckpt = tmp_path / "c.ckpt"
    ckpt.write_bytes(b"weights v1")
    digest = sha256_file(ckpt)
    ir_cache.check_unchanged(str(ckpt), digest)
    ckpt.write_bytes(b"weights v2")  # e.g. a training run wrote best.ckpt meanwhile
    with pytest.raises(ValueError, match="changed while it was being exported"):
        ir_cache.check_unchanged(str(ckpt), digest)


def test_default_eval_of_a_training_checkpoint_takes_its_data_from_the_saved_config(trained_tiny, monkeypatch,
                                                                                     tmp_path):
    """The README's ``python eval.py --pretrained run/best.ckpt``: nothing else given, on the default (OpenVINO)
    path as on MindSpore's, the same metrics on the run's own val data."""
    monkeypatch.delenv("MSZOO_BACKEND")
    monkeypatch.setenv("MSZOO_CACHE", str(tmp_path / "cache"))
    results = {}
    for backend in ("auto", "mindspore"):
        out = tmp_path / f"{backend}.json"
        assert eval_script.main(["--pretrained", trained_tiny["ckpt"], "--backend", backend, "--output", str(out)]) == 0
        results[backend] = json.loads(out.read_text())
    assert results["auto"]["num_samples"] == results["mindspore"]["num_samples"] == 64  # the run's val_num_samples
    assert results["auto"]["top1"] == results["mindspore"]["top1"]
    assert abs(results["auto"]["loss"] - results["mindspore"]["loss"]) < 1e-4
    assert len(_entries(tmp_path / "cache")) == 1  # it ran OpenVINO from a cached IR
