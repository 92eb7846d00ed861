"""MindSpore's CPU convolutions take oneDNN's fast path, not its reference kernel."""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONV_SCRIPT = textwrap.dedent("""
    import numpy as np
    import mindspore as ms
    from mindspore import nn
    from mszoo.cli import set_device

    set_device("CPU", mode="graph")
    conv = nn.Conv2d(3, 8, 4, 4, pad_mode="valid", has_bias=True)
    conv(ms.Tensor(np.ones((2, 3, 32, 32), np.float32))).asnumpy()
""")


def _conv_kernels(env_extra):
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    env.update(env_extra, ONEDNN_VERBOSE="1", GLOG_v="3", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", CONV_SCRIPT], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [ln for ln in out.stdout.splitlines() if ",exec,cpu,convolution," in ln]
    assert lines, out.stdout[-2000:]
    isa = [ln for ln in out.stdout.splitlines() if ",info,cpu,isa:" in ln]
    return [ln.split(",")[6] for ln in lines], isa


def test_set_device_caps_onednn_isa_so_convolutions_avoid_the_reference_kernel():
    impls, isa = _conv_kernels({})
    assert all("ref" not in impl for impl in impls), impls
    assert "AVX-512" not in " ".join(isa), isa


def test_user_choice_of_onednn_isa_is_kept(monkeypatch):
    from mszoo.cpu.onednn import configure_cpu_kernels

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "SSE41")
    configure_cpu_kernels()
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "SSE41"
    _, isa = _conv_kernels({"ONEDNN_MAX_CPU_ISA": "SSE41"})
    assert "SSE4.1" in " ".join(isa), isa
