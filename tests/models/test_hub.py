"""Published weights by name (mszoo/models/hub.py), with no network: a Hugging Face cache prepared here
(``HF_HUB_OFFLINE=1``) and ``file://`` URLs, with weights the tests make."""
import argparse
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from mszoo.models import SEED_CODE_VARIANTS, create_model, list_models
from mszoo.models.hub import PretrainedError, download_path
from mszoo.models.loading import CheckpointFile
from tests.models.test_t2t_vit import FIXTURE, official_state_dict, parity_input

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def mszoo_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MSZOO_CACHE", str(tmp_path / "mszoo"))
    monkeypatch.delenv("MSZOO_OFFLINE", raising=False)
    return tmp_path / "mszoo"


DEFAULT_T2T_URL = "https://github.com/yitu-opensource/T2T-ViT/releases/download/main/71.7_T2T_ViT_7.pth.tar"


def cached_files(cache):
    """Every file under the download cache."""
    root = cache / "downloads"
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


def official_t2t_file(path, seed=None):
    """``t2t_vit_7`` weights in the official release layout (timm's CheckpointSaver: state_dict, args ...)."""
    with open(FIXTURE, encoding="utf-8") as f:
        case = json.load(f)["t2t_vit_7"]
    seed = case["seed"] if seed is None else seed
    weights = {k: torch.from_numpy(v) for k, v in official_state_dict(case["spec"], seed).items()}
    torch.save({"epoch": 309, "arch": "T2t_vit_7", "state_dict": weights, "version": 2, "metric": 71.7,
                "args": argparse.Namespace(model="T2t_vit_7", lr=5e-4, img_size=224)}, path)
    return np.asarray(case["logits"], np.float32)


def logits_of(model, x):
    model.set_train(False)
    return model(ms.Tensor(x)).asnumpy()


def test_every_variant_names_its_published_weights():
    assert list_models(pretrained=True) == list_models(exclude_filters=SEED_CODE_VARIANTS)
    assert create_model("twins_svt_small", num_classes=2, img_size=32, embed_dims=(8, 16, 24, 32),
                        depths=(1, 1, 1, 1)).default_cfg["hf_hub_id"] == "timm/twins_svt_small.in1k"


def test_a_file_url_in_the_official_layout_downloads_once_and_equals_the_official_logits(tmp_path, mszoo_cache,
                                                                                        monkeypatch):
    expected = official_t2t_file(tmp_path / "71.7_T2T_ViT_7.pth.tar")
    url = (tmp_path / "71.7_T2T_ViT_7.pth.tar").as_uri()
    model = create_model("t2t_vit_7", pretrained=url)
    np.testing.assert_allclose(logits_of(model, parity_input(2, 224)), expected, atol=1e-4, rtol=0)
    assert cached_files(mszoo_cache) == [download_path(url)]  # no partial file left
    (converted,) = os.listdir(mszoo_cache / "converted")
    record = CheckpointFile(str(mszoo_cache / "converted" / converted)).record
    assert record["arch"] == "t2t_vit_7" and record["num_classes"] == 1000 and record["crop_pct"] == 0.9
    os.remove(tmp_path / "71.7_T2T_ViT_7.pth.tar")  # offline from here on: the cached files are enough
    monkeypatch.setenv("MSZOO_OFFLINE", "1")
    again = create_model("t2t_vit_7", pretrained=url, num_classes=10)  # re-headed for fine-tuning
    assert again.num_classes == 10
    np.testing.assert_array_equal(again.norm.weight.asnumpy(), model.norm.weight.asnumpy())


def test_a_checksum_mismatch_is_refused_and_nothing_is_kept(tmp_path, mszoo_cache):
    path = tmp_path / "w.pth"
    official_t2t_file(path)
    with pytest.raises(PretrainedError, match=r"checksum mismatch \(sha256 [0-9a-f]{64}, expected 0{64}\)"):
        create_model("t2t_vit_7", pretrained=path.as_uri() + "#sha256=" + "0" * 64)
    assert cached_files(mszoo_cache) == []


def test_an_interrupted_download_leaves_no_file_that_looks_whole(tmp_path, mszoo_cache, monkeypatch):
    path = tmp_path / "w.pth"
    official_t2t_file(path)
    size = os.path.getsize(path)

    class CutShort:  # the server announces the whole file, the connection ends after 1000 bytes
        headers = {"Content-Length": str(size)}
        parts = [path.read_bytes()[:1000], b""]

        def read(self, n=-1):
            return self.parts.pop(0) if self.parts else b""

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: CutShort())
    with pytest.raises(PretrainedError, match=rf"ended after 1000 of {size} bytes; try again"):
        create_model("t2t_vit_7", pretrained=path.as_uri())
    assert cached_files(mszoo_cache) == []


def test_two_urls_with_one_file_name_are_two_cached_files(tmp_path, mszoo_cache):
    # Same file name, other folder, other weights: the second URL must not get the first one's file.
    first, second = tmp_path / "a" / "w.pth", tmp_path / "b" / "w.pth"
    for path, seed in ((first, 0), (second, 1)):
        path.parent.mkdir()
        official_t2t_file(path, seed=seed)
    a = create_model("t2t_vit_7", pretrained=first.as_uri())
    b = create_model("t2t_vit_7", pretrained=second.as_uri())
    assert sorted(cached_files(mszoo_cache)) == sorted([download_path(first.as_uri()), download_path(second.as_uri())])
    assert not np.array_equal(a.norm.weight.asnumpy(), b.norm.weight.asnumpy())


def test_offline_without_the_file_is_one_line_saying_what_to_download_and_where(mszoo_cache, monkeypatch):
    monkeypatch.setenv("MSZOO_OFFLINE", "1")
    with pytest.raises(PretrainedError) as err:
        create_model("t2t_vit_7", pretrained=True)
    msg = str(err.value)
    assert "\n" not in msg and "71.7_T2T_ViT_7.pth.tar is not in the cache" in msg
    assert "download https://github.com/yitu-opensource/T2T-ViT/releases/download/main/71.7_T2T_ViT_7.pth.tar" in msg
    assert download_path(DEFAULT_T2T_URL) in msg


HUB_PROBE = r"""
import json, os, sys
sys.path.insert(0, {root!r})
import numpy as np
from mszoo.models import create_model
x = np.load(sys.argv[1])
model = create_model("twins_svt_small", pretrained=True)
model.set_train(False)
import mindspore as ms
np.save(sys.argv[2], model(ms.Tensor(x)).asnumpy())
converted = os.path.join(os.environ["MSZOO_CACHE"], "converted")
first = {{n: os.path.getmtime(os.path.join(converted, n)) for n in os.listdir(converted)}}
create_model("twins_svt_small", pretrained="hf-hub:timm/twins_svt_small.in1k", num_classes=3)
second = {{n: os.path.getmtime(os.path.join(converted, n)) for n in os.listdir(converted)}}
print("CONVERTED " + json.dumps({{"first": first, "second": second}}))
"""


def hub_cache(root, repo, files):
    """A Hugging Face cache holding ``files`` ({name: writer(path)}) for ``repo`` at revision main."""
    folder = root / ("models--" + repo.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, write in files.items():
        write(str(snapshot / name))


def offline_env(tmp_path):
    return dict(os.environ, GLOG_v="3", HF_HUB_CACHE=str(tmp_path / "hf"), HF_HUB_OFFLINE="1",
                MSZOO_CACHE=str(tmp_path / "mszoo"))


def test_pretrained_true_takes_the_hub_weights_from_the_cache_offline_and_converts_once(tmp_path):
    torch.manual_seed(0)
    ref = timm.create_model("twins_svt_small", pretrained=False).eval()
    state = {k: v.contiguous() for k, v in ref.state_dict().items()}
    hub_cache(tmp_path / "hf", "timm/twins_svt_small.in1k", {"model.safetensors": lambda p: save_file(state, p)})
    x = np.random.RandomState(0).randn(1, 3, 224, 224).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run = subprocess.run([sys.executable, "-c", HUB_PROBE.format(root=ROOT), str(tmp_path / "x.npy"),
                          str(tmp_path / "ours.npy")], capture_output=True, text=True, env=offline_env(tmp_path),
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "ours.npy"), expected, atol=1e-4, rtol=0)
    times = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("CONVERTED "))[10:])
    assert len(times["first"]) == 1 and times["first"] == times["second"]  # converted once, then reused


@pytest.mark.parametrize("content", [None, b"truncated"], ids=["missing", "truncated"])
def test_a_hub_file_missing_offline_or_truncated_is_one_clear_line(tmp_path, trained_tiny, content):
    if content is not None:
        hub_cache(tmp_path / "hf", "timm/tnt_s_patch16_224.in1k",
                  {"model.safetensors": lambda p: Path(p).write_bytes(content)})
    run = subprocess.run([sys.executable, os.path.join(ROOT, "infer.py"), "--arch", "tnt_s_patch16_224",
                          "--pretrained", "timm", "--input", trained_tiny["photos"]], capture_output=True, text=True,
                         env=offline_env(tmp_path), timeout=300)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    if content is None:
        assert lines[0] == ("error: timm/tnt_s_patch16_224.in1k: model.safetensors is not in the Hugging Face cache "
                            "and the Hub cannot be reached; download https://huggingface.co/timm/"
                            "tnt_s_patch16_224.in1k/resolve/main/model.safetensors and pass it with --pretrained FILE")
    else:
        assert lines[0].startswith("error: tnt_s_patch16_224: cannot read ") and "as safetensors" in lines[0]


def test_scripts_take_the_model_of_a_hub_id_and_need_an_arch_for_timm(tmp_path, monkeypatch):
    from mszoo.config import ConfigError, parse_config
    from mszoo.resolve import pretrained_file

    monkeypatch.setenv("MSZOO_OFFLINE", "1")
    cfg, _ = parse_config(["--pretrained", "timm"])
    with pytest.raises(ConfigError, match=r"arch: give the model that --pretrained timm holds"):
        pretrained_file(cfg)
    cfg, _ = parse_config(["--pretrained", "hf-hub:timm/tnt_s_patch16_224.in1k"])
    monkeypatch.setattr("mszoo.models.hub.pretrained_checkpoint", lambda name, spec: f"{name}.ckpt")
    assert pretrained_file(cfg) == "tnt_s_patch16_224.ckpt" and cfg.arch == "tnt_s_patch16_224"
