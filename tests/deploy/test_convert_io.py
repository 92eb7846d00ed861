"""Reading PyTorch-side checkpoints safely: formats, nesting, prefixes, refusal of code."""
import os
import subprocess
import sys

import numpy as np
import pytest

from mszoo.models.convert import ConversionError, read_torch_checkpoint, strip_prefixes, unwrap_state_dict

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_safetensors_is_read_without_pytorch(tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    path = str(tmp_path / "w.safetensors")
    save_file({"module.head.weight": np.ones((2, 3), np.float32)}, path)
    monkeypatch.setitem(sys.modules, "torch", None)  # any "import torch" now fails
    sd = read_torch_checkpoint(path)
    assert list(sd) == ["head.weight"]
    np.testing.assert_array_equal(sd["head.weight"], np.ones((2, 3), np.float32))


def test_pth_without_pytorch_gives_clear_message(tmp_path, monkeypatch):
    path = tmp_path / "w.pth"
    path.write_bytes(b"not really a checkpoint")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ConversionError, match=r"needs PyTorch .*a \.safetensors file converts without it"):
        read_torch_checkpoint(str(path))


def test_nested_state_dicts_and_prefixes_are_unwrapped(tmp_path):
    import torch

    path = str(tmp_path / "ckpt.pth")
    torch.save({"epoch": 3, "state_dict": {"module.blocks.0.weight": torch.ones(2)},
                "optimizer": {"lr": 0.1}}, path)
    sd = read_torch_checkpoint(path)
    assert list(sd) == ["blocks.0.weight"]


def test_ema_weights_are_taken_only_when_asked():
    plain = {"a": np.zeros(1)}
    ema = {"a": np.ones(1)}
    obj = {"state_dict": plain, "state_dict_ema": ema}
    assert unwrap_state_dict(obj)["a"][0] == 0
    assert unwrap_state_dict(obj, prefer_ema=True)["a"][0] == 1


def test_strip_prefixes_handles_ddp_and_compile():
    assert list(strip_prefixes({"module._orig_mod.x": 1, "y": 2})) == ["x", "y"]


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    # A pickle whose loading would run a shell command (written by a separate interpreter).
    code = ("import os, pickle\n"
            "class E:\n"
            f"    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
            f"open({str(evil)!r}, 'wb').write(pickle.dumps({{'state_dict': E()}}))\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(ConversionError, match=r"^refusing .*evil\.pth: it cannot be read with "
                                              r"torch\.load\(weights_only=True\)"):
        read_torch_checkpoint(str(evil))
    assert not marker.exists()


def test_unsupported_extension_and_missing_file(tmp_path):
    with pytest.raises(ConversionError, match="input checkpoint not found"):
        read_torch_checkpoint(str(tmp_path / "nope.pth"))
    other = tmp_path / "w.npz"
    other.write_bytes(b"x")
    with pytest.raises(ConversionError, match=r"unsupported checkpoint type"):
        read_torch_checkpoint(str(other))


def test_convert_cli_reports_errors_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "convert_from_pt.py", "--arch", "no_such_model", "--input",
                          str(tmp_path / "x.pth"), "--output", str(tmp_path / "x.ckpt")],
                         cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, GLOG_v="3"), timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: input checkpoint not found")
    assert "Traceback" not in out.stderr
