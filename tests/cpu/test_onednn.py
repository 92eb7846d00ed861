"""MindSpore's CPU kernels under oneDNN: which ISA cap the scripts set (by CPU flags), and that a training step of
each family (and its evaluation forward) runs no convolution with the fused kernels the trainer uses, and none but
Twins' depthwise PEG without them (convolutions take oneDNN's reference reorder on AVX-512)."""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TRAIN_STEP_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import mindspore as ms
    from mszoo.cli import set_device
    from mszoo.cpu.kernels import set_fused_kernels
    from mszoo.models import create_model
    from tests.tiny import tiny_kwargs

    set_device("CPU", mode="pynative")  # the same CPU kernels as a graph, without compiling
    for case in sys.argv[1:]:
        name, kernels = case.split(":")
        model = create_model(name, num_classes=4, **tiny_kwargs(name))
        assert set_fused_kernels(model, kernels == "fused") == (kernels == "fused")
        model.set_train(True)
        grad = ms.value_and_grad(lambda x: model(x).sum(), None, model.trainable_params())
        print("MODEL " + case, flush=True)
        x = ms.Tensor(np.ones((2, 3, 32, 32), np.float32))
        grad(x)[0].asnumpy()
        model.set_train(False)  # and an evaluation forward, as validation runs it
        model(x).asnumpy()
""")


def _convolutions_by_model(names):
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="ALL", ONEDNN_VERBOSE="1", GLOG_v="3", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", TRAIN_STEP_SCRIPT, *names], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    found, model = {}, None
    for line in out.stdout.splitlines():
        if line.startswith("MODEL "):
            model = line[6:]
            found[model] = []
        elif ",exec,cpu,convolution," in line and model:
            found[model].append(line.split(",exec,cpu,convolution,", 1)[1])
    assert set(found) == set(names), out.stdout[-2000:]
    return found


def test_a_training_step_runs_no_convolution_with_the_fused_kernels_and_only_twins_peg_without(kernel_cache):
    """``kernel_cache``: the session's built library, which the script's process finds in its environment."""
    fused = ["twins_pcpvt_small:fused", "twins_svt_small:fused", "tnt_s_patch16_224:fused", "t2t_vit_t_14:fused"]
    found = _convolutions_by_model(fused + ["twins_svt_small:builtin", "tnt_s_patch16_224:builtin"])
    assert not any(found[case] for case in fused), found
    assert not found["tnt_s_patch16_224:builtin"], found
    shapes = [line.split(",")[-2] for line in found["twins_svt_small:builtin"]]
    assert shapes and all(s.startswith("g") and "kh3sh1" in s for s in shapes), shapes  # grouped 3x3, stride 1


def test_the_cap_follows_the_cpu_flags_and_the_kernels_and_keeps_a_users_choice(monkeypatch, tmp_path):
    from mszoo.cpu import onednn

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n\nprocessor\t: 1\n")
    assert onednn.cpu_flags(str(info)) == {"fpu", "sse", "avx2", "avx512f", "avx512_bf16"}
    assert onednn.cpu_flags(str(tmp_path / "missing")) == frozenset()
    zen4, amx = {"avx2", "avx512f", "avx512_bf16"}, {"avx2", "avx512f", "avx512_bf16", "amx_tile"}
    for flags, fused, cap in (({"avx2"}, False, None),
                              (zen4, True, None),  # no convolution left in training: uncapped pays
                              (zen4, False, "AVX2"),  # the PEG would train on the reference kernel
                              (amx, False, None)):  # capped, AMX CPUs trained at 0.65-0.86x timm
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        assert onednn.isa_cap(flags, fused) == cap
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert onednn.configure_cpu_kernels(zen4) == "AVX2" and os.environ.get("ONEDNN_MAX_CPU_ISA") == "AVX2"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "SSE41")
    assert onednn.configure_cpu_kernels({"avx2", "avx512f"}) == "SSE41"


def test_a_process_with_kernels_is_uncapped_only_when_they_are_wanted_and_a_compiler_is_on_the_path(monkeypatch):
    from mszoo.cpu import kernels, onednn

    monkeypatch.setenv("CXX", sys.executable)  # any program on the path stands for the compiler here
    monkeypatch.delenv("MSZOO_FUSED_KERNELS", raising=False)
    cases = [({}, True, None),  # models on the kernels: no convolution left
             ({}, False, "AVX2"),  # models without them run the PEG as a convolution
             ({"MSZOO_FUSED_KERNELS": "0"}, True, "AVX2"),
             ({"CXX": "/nonexistent/g++"}, True, "AVX2")]
    for env, fused, cap in cases:
        with monkeypatch.context() as m:
            m.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
            for key, value in env.items():
                m.setenv(key, value)
            assert kernels.fused_kernels_expected() == (not env)
            assert onednn.configure_cpu_kernels({"avx512f"}, fused_kernels=fused) == cap, (env, fused)


def _fused_kernels_asked(monkeypatch, module, main, argv):
    """What ``main(argv)`` passes to ``start(..., fused_kernels=)`` (False when not given)."""
    class Started(Exception):
        pass

    def fake_start(cfg, **kwargs):
        raise Started(kwargs.get("fused_kernels", False))

    monkeypatch.setattr(module, "start", fake_start, raising=False)  # tune imports it from mszoo.cli when run
    monkeypatch.setattr("mszoo.cli.start", fake_start)
    try:
        main(argv)
    except Started as started:
        return started.args[0]
    raise AssertionError(f"{main} never set up the device")


def test_training_and_mindspore_evaluation_and_inference_set_up_processes_with_kernels(monkeypatch, trained_tiny):
    """train.py and tune_params.py, and eval.py / infer.py with ``--backend mindspore``, give their models the
    kernels and say so (``start(..., fused_kernels=True)``); the exported backends' runs keep the default."""
    from mszoo.tools import eval as eval_tool
    from mszoo.tools import infer, train, tune

    monkeypatch.setattr(train, "hold_stop_signals", lambda: None)
    config = ["--config", os.path.join(ROOT, "configs", "quickstart.yaml")]
    assert _fused_kernels_asked(monkeypatch, train, train.main, config) is True
    assert _fused_kernels_asked(monkeypatch, tune, tune.main, config + ["--search", "unread.yaml", "--trials", "1"])
    ckpt, photos = trained_tiny["ckpt"], trained_tiny["photos"]
    for backend, fused in (("mindspore", True), ("mindir", False)):
        tool_args = ["--pretrained", ckpt, "--backend", backend]
        assert _fused_kernels_asked(monkeypatch, infer, infer.main, tool_args + ["--input", photos]) is fused
        data = ["--data_url", trained_tiny["digits"]]
        assert _fused_kernels_asked(monkeypatch, eval_tool, eval_tool.main, tool_args + data) is fused
