"""Fused CPU kernels (MindSpore AOT custom ops: LayerNorm, GELU, softmax's gradient, a bias's gradient, Twins'
PEG): the built-in ops' numbers in value and every gradient, built once and cached, the built-in ops with one note when
they cannot be built."""
import functools
import logging
import math
import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from mszoo.cpu import kernels
from mszoo.models import create_model
from mszoo.models.layers import GELU, LayerNorm, Linear, PosConv, Softmax, UnfoldConv, UnfoldRows
from tests.models.helpers import Vjp
from tests.tiny import tiny_kwargs

MODES = [ms.PYNATIVE_MODE, ms.GRAPH_MODE]
# rows x features: rows not a multiple of the thread count; the large ones run on several threads
# (MSZOO_KERNEL_THREADS=3 in the session fixture)
SHAPES = [(3, 5, 1), (3, 5, 7), (15, 64), (3, 5, 320), (7, 512), (1001, 320), (2, 1031, 64)]


@pytest.fixture
def no_library_cached():
    """Forget the process's library so the next use builds (or fails to) under the test's environment."""
    kernels.kernel_library.cache_clear()
    yield
    kernels.kernel_library.cache_clear()


def _run(cell, x, dy, mode, fused_on):
    ms.set_context(mode=mode)
    try:
        assert kernels.set_fused_kernels(cell, fused_on) == fused_on
        cell.set_train(True)
        y, (grads_in, grads_w) = Vjp(cell)(ms.Tensor(x), ms.Tensor(dy))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    return [y.asnumpy(), grads_in[0].asnumpy()] + [g.asnumpy() for g in grads_w]


def _close(actual, expected, rtol=1e-5):
    """Equal within ``rtol`` of the largest magnitude (relative, robust to values near zero)."""
    scale = max(float(np.abs(expected).max()), 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


def _close_to_both(custom, builtin, expected64):
    """Every output of the kernel path within 1e-5 of the built-in path's and of float64's."""
    for got, ref, ref64 in zip(custom, builtin, expected64):
        _close(got, ref)
        _close(got, ref64)


def _layer_norm_64(x, w, b, dy, eps):
    mean = x.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    g = dy * w
    dx = rstd * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
    rows = dy.reshape(-1, x.shape[-1])
    return [xhat * w + b, dx, (rows * xhat.reshape(rows.shape)).sum(0), rows.sum(0)]


def _gelu_64(x, dy):
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(x / np.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    return [x * cdf, dy * (cdf + x * pdf)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_layer_norm_equals_builtin_and_float64_in_value_and_gradients(kernel_cache, mode, shape):
    rng = np.random.RandomState(0)
    dim = shape[-1]
    x = (rng.randn(*shape) * 3 + 1).astype(np.float32)
    dy = rng.randn(*shape).astype(np.float32)
    w, b = rng.randn(dim).astype(np.float32), rng.randn(dim).astype(np.float32)
    results = []
    for fused_on in (False, True):
        cell = LayerNorm(dim, eps=1e-6)
        cell.weight.set_data(ms.Tensor(w))
        cell.bias.set_data(ms.Tensor(b))
        results.append(_run(cell, x, dy, mode, fused_on))
    builtin, custom = results
    expected = _layer_norm_64(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                              dy.astype(np.float64), 1e-6)
    _close_to_both(custom, builtin, expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_gelu_equals_builtin_and_float64_in_value_and_gradient(kernel_cache, mode, shape):
    rng = np.random.RandomState(1)
    x = (rng.randn(*shape) * 3).astype(np.float32)
    x.flat[:4] = [0.0, -9.0, 9.0, 4.5][: x.size]  # zero and both tails of erf
    dy = rng.randn(*shape).astype(np.float32)
    builtin = _run(GELU(), x, dy, mode, False)
    custom = _run(GELU(), x, dy, mode, True)
    _close_to_both(custom, builtin, _gelu_64(x.astype(np.float64), dy.astype(np.float64)))


class _PegOnMap(nn.Cell):
    """``PosConv`` on tokens of a fixed ``(H, W)`` map, as one-input cell for ``Vjp``."""

    def __init__(self, size, channels, kernel, bias):
        super().__init__()
        self.size = size
        self.peg = PosConv(channels, channels)
        self.peg.proj[0].weight.set_data(ms.Tensor(kernel))
        self.peg.proj[0].bias.set_data(ms.Tensor(bias))

    def construct(self, x):
        return self.peg(x, self.size)


def _peg_64(x, kernel, bias, dy):
    """x + bias + the depthwise 3x3 convolution of the channels-last map ``x`` (B, H, W, C), and its gradients
    for x, kernel (C, 1, 3, 3) and bias, from ``dy``; outputs in tokens (B, H * W, C)."""
    n, h, w, c = x.shape
    xp, dyp = (np.pad(a, ((0, 0), (1, 1), (1, 1), (0, 0))) for a in (x, dy))
    y, dx, dk = x + bias, dy.copy(), np.zeros((c, 1, 3, 3))
    for i in range(3):
        for j in range(3):
            window = xp[:, i:i + h, j:j + w]  # x[h + i - 1, w + j - 1]
            y += kernel[:, 0, i, j] * window
            dk[:, 0, i, j] = (dy * window).sum((0, 1, 2))
            dx += kernel[:, 0, i, j] * dyp[:, 2 - i:2 - i + h, 2 - j:2 - j + w]  # dy[h - i + 1, w - j + 1]
    return [y.reshape(n, h * w, c), dx.reshape(n, h * w, c), dk, dy.sum((0, 1, 2))]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(2, 5, 7, 20), (1, 1, 1, 3), (2, 14, 14, 64)])  # the last on 3 threads
def test_fused_peg_equals_builtin_and_float64_in_value_and_gradients(kernel_cache, mode, shape):
    rng = np.random.RandomState(6)
    n, h, w, c = shape
    x, dy = rng.randn(n, h * w, c).astype(np.float32), rng.randn(n, h * w, c).astype(np.float32)
    kernel, bias = rng.randn(c, 1, 3, 3).astype(np.float32), rng.randn(c).astype(np.float32)
    builtin = _run(_PegOnMap((h, w), c, kernel, bias), x, dy, mode, False)
    custom = _run(_PegOnMap((h, w), c, kernel, bias), x, dy, mode, True)
    expected = _peg_64(*(a.astype(np.float64) for a in (x.reshape(shape), kernel, bias, dy.reshape(shape))))
    _close_to_both(custom, builtin, expected)

def _softmax_64(x, dy):
    e = np.exp(x - x.max(-1, keepdims=True))
    y = e / e.sum(-1, keepdims=True)
    return [y, y * (dy - (dy * y).sum(-1, keepdims=True))]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(3, 5, 1), (3, 5, 7), (2, 4, 16, 16), (2, 3, 49, 49), (7, 512), (1001, 33)])
def test_fused_softmax_gradient_equals_builtin_and_float64(kernel_cache, mode, shape):
    rng = np.random.RandomState(4)
    x = (rng.randn(*shape) * 4).astype(np.float32)
    dy = rng.randn(*shape).astype(np.float32)
    builtin = _run(Softmax(), x, dy, mode, False)
    custom = _run(Softmax(), x, dy, mode, True)
    _close_to_both(custom, builtin, _softmax_64(x.astype(np.float64), dy.astype(np.float64)))


def _linear(in_features, out_features, seed):
    layer = Linear(in_features, out_features)
    rng = np.random.RandomState(seed)
    layer.weight.set_data(ms.Tensor(rng.randn(out_features, in_features).astype(np.float32)))
    layer.bias.set_data(ms.Tensor(rng.randn(out_features).astype(np.float32)))
    return layer


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(1, 1, 4), (3, 5, 7), (31, 96), (33, 96), (2, 1031, 24)])
def test_fused_bias_gradient_equals_builtin_and_float64(kernel_cache, mode, shape):
    """Linear's bias gradient (rows fewer than, one more than, and many blocks of 32) with the column-sum kernel."""
    rng = np.random.RandomState(5)
    x = rng.randn(*shape).astype(np.float32)
    dy = rng.randn(*shape[:-1], 9).astype(np.float32)
    builtin = _run(_linear(shape[-1], 9, 6), x, dy, mode, False)
    custom = _run(_linear(shape[-1], 9, 6), x, dy, mode, True)
    for got, ref in zip(custom, builtin):
        _close(got, ref)
    _close(custom[-1], dy.astype(np.float64).reshape(-1, 9).sum(0))  # the bias gradient


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("geometry", [
    ((2, 3, 16, 16), 7, 4, 3),  # TNT's pixel embedding on one patch per sample
    ((1, 2, 9, 11), 3, 2, 1),  # odd sizes: the last window overhangs
    ((2, 3, 10, 10), 2, 3, 0),  # gaps between windows: some pixels read by none
    ((1, 4, 6, 5), 5, 1, 2),  # overlapping windows, every pixel read up to 25 times
    ((392, 3, 16, 16), 7, 4, 3),  # a TNT batch's patches, on 3 threads
])
def test_fused_unfold_conv_equals_builtin_in_value_and_gradients(kernel_cache, mode, geometry):
    """The kernel's rows are the built-in unfold's; the input gradient is the sum over the windows (float64)."""
    shape, k, stride, pad = geometry
    rng = np.random.RandomState(5)
    cell = lambda: UnfoldConv(shape[1], 6, k, stride=stride, padding=pad)  # noqa: E731
    weights = [rng.randn(*p.shape).astype(np.float32) for p in cell().get_parameters()]
    x = rng.randn(*shape).astype(np.float32)
    dy = rng.randn(*cell()(ms.Tensor(x)).shape).astype(np.float32)
    results = []
    for fused_on in (False, True):
        conv = cell()
        for p, w in zip(conv.get_parameters(), weights):
            p.set_data(ms.Tensor(w))
        results.append(_run(conv, x, dy, mode, fused_on))
    for got, ref in zip(results[1], results[0]):
        _close(got, ref)
    ref_conv = ms.ops.Conv2D(6, k, pad_mode="pad", pad=pad, stride=stride)
    w64 = weights[0].astype(np.float64)
    dx64 = _conv_input_gradient(dy.astype(np.float64), w64, shape, stride, pad)
    _close(results[1][1], dx64)
    _close(results[1][0], ref_conv(ms.Tensor(x), ms.Tensor(weights[0])).asnumpy() + weights[1][:, None, None])


def _conv_input_gradient(dy, w, shape, stride, pad):
    """dx of a zero-padded convolution, in float64: each output's gradient spread back over its window."""
    b, c, h, wd = shape
    k = w.shape[-1]
    dx = np.zeros((b, c, h + 2 * pad + k, wd + 2 * pad + k))
    for oy in range(dy.shape[2]):
        for ox in range(dy.shape[3]):
            dx[:, :, oy * stride:oy * stride + k, ox * stride:ox * stride + k] += np.einsum(
                "bo,ocij->bcij", dy[:, :, oy, ox], w)
    return dx[:, :, pad:pad + h, pad:pad + wd]


class _ScaleSamples(nn.Cell):
    """DropPath's product with a fixed mask (DropPath draws a new one per call)."""

    def __init__(self, mask):
        super().__init__()
        from mszoo.cpu.lean_ops import MulBySampleMask

        self.mask = ms.Tensor(mask)
        self.mul = MulBySampleMask()

    def construct(self, x):
        return self.mul(x, self.mask)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(3, 1), (4, 7, 5), (8, 197, 384), (1568, 16, 24)])  # the large on 3 threads
def test_fused_sample_scale_equals_builtin_bitwise_in_value_and_gradient(kernel_cache, mode, shape):
    rng = np.random.RandomState(4)
    keep = 0.8
    mask = (np.floor(keep + rng.rand(shape[0], *(1,) * (len(shape) - 1))) / keep).astype(np.float32)
    mask[0] = 0.0  # one dropped sample at least
    x, dy = rng.randn(*shape).astype(np.float32), rng.randn(*shape).astype(np.float32)
    builtin = _run(_ScaleSamples(mask), x, dy, mode, False)
    custom = _run(_ScaleSamples(mask), x, dy, mode, True)
    for got, ref in zip(custom, builtin):
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(custom[0], x * mask)


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_fused_results_do_not_depend_on_the_thread_count(kernel_cache, monkeypatch, threads):
    """Rows split unevenly over the threads; the weight/bias sums run in fixed blocks: bitwise equal."""
    rng = np.random.RandomState(2)
    x, dy = rng.randn(2, 1031, 64).astype(np.float32), rng.randn(2, 1031, 64).astype(np.float32)
    cells = lambda: [LayerNorm(64), GELU(), Softmax(), _linear(64, 64, 7)]  # noqa: E731
    monkeypatch.setenv("MSZOO_KERNEL_THREADS", "1")
    single = [r for cell in cells() for r in _run(cell, x, dy, ms.PYNATIVE_MODE, True)]
    monkeypatch.setenv("MSZOO_KERNEL_THREADS", threads)
    several = [r for cell in cells() for r in _run(cell, x, dy, ms.PYNATIVE_MODE, True)]
    for a, b in zip(single, several):
        np.testing.assert_array_equal(a, b)


def test_fused_kernels_run_only_for_float32_training(kernel_cache):
    """float16 (AMP) inputs and evaluation keep the built-in ops."""
    cell = LayerNorm(8)
    kernels.set_fused_kernels(cell)
    x = np.random.RandomState(3).randn(4, 8).astype(np.float16)
    cell.set_train(True)
    y = cell(ms.Tensor(x))
    assert y.dtype == ms.float16
    kernels.set_fused_kernels(cell, False)
    np.testing.assert_array_equal(y.asnumpy(), cell(ms.Tensor(x)).asnumpy())
    gelu = GELU()
    kernels.set_fused_kernels(gelu)
    assert gelu(ms.Tensor(x)).dtype == ms.float16


def test_every_fused_cell_is_switched_and_uses_its_kernel_only_in_float32_training(kernel_cache):
    """One rule (``FusedKernelUser.use_kernel``) for every cell with a kernel: training, float32, switched on."""
    from mszoo.cpu.lean_ops import BiasAdd2D, MulBySampleMask
    from mszoo.models.layers import Permute, SplitHeads

    cells = [LayerNorm(8), GELU(), Permute((0, 2, 1)), SplitHeads(2, 2), Softmax(), BiasAdd2D(), MulBySampleMask()]
    in_inference = [PosConv(8, 8), UnfoldRows(7, stride=4, padding=3)]  # exact forwards: in evaluation too
    net = ms.nn.CellList(cells + in_inference)
    assert kernels.set_fused_kernels(net)
    x32 = ms.Tensor(np.ones((2, 8), np.float32))
    for cell in cells + in_inference:
        assert cell.fused is not None, type(cell).__name__
        cell.set_train(True)
        assert cell.use_kernel(x32) and not cell.use_kernel(x32.astype(ms.float16)), type(cell).__name__
        cell.set_train(False)
        assert cell.use_kernel(x32) == any(cell is c for c in in_inference), type(cell).__name__
    kernels.set_fused_kernels(net, False)
    net.set_train(True)
    assert not any(cell.use_kernel(x32) for cell in cells + in_inference)


@functools.cache
def _builtin_gradients(name):
    """The built-in path's gradients, once per model for the cases with and without checkpointing. In PyNative:
    it compiles nothing, and GRAPH mode gives the same numbers (tests/models/test_models.py)."""
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        return _model_gradients(name, False)
    finally:
        ms.set_context(mode=mode)


def _model_gradients(name, fused_on, checkpointing=False):
    ms.set_seed(0)
    model = create_model(name, num_classes=4, **tiny_kwargs(name))
    if checkpointing:
        model.set_grad_checkpointing(True)
    kernels.set_fused_kernels(model, fused_on)
    model.set_train(True)
    x = ms.Tensor(np.random.RandomState(4).randn(2, 3, 32, 32).astype(np.float32))
    params = model.trainable_params()
    loss_fn = lambda inputs: model(inputs).square().mean()  # noqa: E731
    loss, grads = ms.value_and_grad(loss_fn, None, params)(x)
    return [loss.asnumpy()] + [g.asnumpy() for g in grads], [p.name for p in params]


@pytest.mark.parametrize("name,checkpointing", [
    ("twins_pcpvt_small", False), ("twins_svt_small", False), ("tnt_s_patch16_224", False), ("t2t_vit_t_14", False),
    ("t2t_vit_14", False), ("twins_pcpvt_small", True), ("tnt_s_patch16_224", True)])
def test_model_training_gradients_equal_the_builtin_path(kernel_cache, graph_mode, name, checkpointing):
    builtin, names = _builtin_gradients(name)
    custom, _ = _model_gradients(name, True, checkpointing)
    for param, got, ref in zip(["loss"] + names, custom, builtin):
        try:
            _close(got, ref, rtol=1e-5)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {param} differs") from exc


def test_a_model_with_fused_kernels_exports_the_builtin_graph(kernel_cache, tmp_path):
    from tests.deploy.conftest import export_with_reference
    from tests.deploy.test_export import _cfg, _check_exports

    name = "twins_pcpvt_small"
    model = create_model(name, num_classes=4, **tiny_kwargs(name))
    assert kernels.set_fused_kernels(model)
    model.set_train(True)  # as the trainer leaves it: the export must still be the built-in inference graph
    _check_exports(export_with_reference(model, _cfg(name, 32, 4), str(tmp_path), (1,)), 4)
    assert kernels.kernels_in_use(model)  # given back after the export


def _note_records(caplog):
    return [r for r in caplog.records if "fused CPU kernels unavailable" in r.getMessage()]


@pytest.mark.parametrize("cxx", ["/nonexistent/g++", "false"])
def test_without_a_working_compiler_training_uses_builtin_ops_after_one_note(no_library_cached, monkeypatch,
                                                                          tmp_path, caplog, cxx):
    monkeypatch.setenv("CXX", cxx)
    monkeypatch.setenv("MSZOO_KERNEL_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(logging.getLogger(kernels.LOGGER_NAME), "propagate", True)
    rng = np.random.RandomState(5)
    x, dy = rng.randn(3, 7).astype(np.float32), rng.randn(3, 7).astype(np.float32)
    with caplog.at_level(logging.INFO, logger=kernels.LOGGER_NAME):
        assert not kernels.set_fused_kernels(GELU())
        fell_back = _run(LayerNorm(7), x, dy, ms.PYNATIVE_MODE, False)
        assert not kernels.set_fused_kernels(LayerNorm(7))
    assert len(_note_records(caplog)) == 1
    assert "Traceback" not in caplog.text
    monkeypatch.delenv("CXX")
    builtin = _run(LayerNorm(7), x, dy, ms.PYNATIVE_MODE, False)
    for a, b in zip(fell_back, builtin):
        np.testing.assert_array_equal(a, b)


def test_a_library_directory_mindspore_refuses_means_builtin_ops_after_one_note(no_library_cached, monkeypatch,
                                                                              tmp_path, caplog):
    monkeypatch.setenv("MSZOO_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setenv("MS_CUSTOM_AOT_WHITE_LIST", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(logging.getLogger(kernels.LOGGER_NAME), "propagate", True)
    with caplog.at_level(logging.INFO, logger=kernels.LOGGER_NAME):
        assert not kernels.set_fused_kernels(LayerNorm(4))
        assert not kernels.set_fused_kernels(GELU())
    assert len(_note_records(caplog)) == 1


@pytest.mark.parametrize("outcome", ["built", "failed"])
def test_a_build_started_in_the_background_is_the_one_the_first_use_takes(no_library_cached, monkeypatch, caplog,
                                                                          outcome):
    import threading

    builds = []

    def build():
        builds.append(threading.current_thread().name)
        if outcome == "failed":
            raise kernels.KernelBuildError("no C++ compiler (g++ not found; set CXX)")
        return "/built/fused_cpu.so"

    monkeypatch.setattr(kernels, "build_library", build)
    monkeypatch.setattr(kernels, "fused_ops", lambda path: None)
    monkeypatch.setattr(kernels, "_background_build", None)
    monkeypatch.setattr(logging.getLogger(kernels.LOGGER_NAME), "propagate", True)
    kernels.build_in_background()
    kernels.build_in_background()  # a second call starts nothing
    with caplog.at_level(logging.INFO, logger=kernels.LOGGER_NAME):
        assert kernels.kernel_library() == (None if outcome == "failed" else "/built/fused_cpu.so")
    assert len(builds) == 1 and builds[0].startswith("mszoo-kernel-build")
    assert len(_note_records(caplog)) == int(outcome == "failed")


@pytest.mark.parametrize("damage", ["garbage", "foreign", "no_record"])
def test_a_damaged_or_foreign_cached_library_is_rebuilt(no_library_cached, monkeypatch, tmp_path, damage):
    monkeypatch.setenv("MSZOO_KERNEL_CACHE", str(tmp_path))
    monkeypatch.delenv("CXX", raising=False)
    path = kernels.build_library()
    with open(path, "rb") as f:
        built = f.read()
    if damage == "garbage":
        with open(path, "wb") as f:
            f.write(b"\x7fELF not really a library")
    elif damage == "foreign":
        with open("/bin/true", "rb") as src, open(path, "wb") as f:
            f.write(src.read())
    else:
        os.remove(path + ".sha256")
    assert kernels.build_library() == path
    with open(path, "rb") as f:
        rebuilt = f.read()
    assert rebuilt[:4] == b"\x7fELF" and kernels._is_valid(path)
    assert len(rebuilt) == len(built)
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")] == []


def test_the_environment_switch_turns_the_kernels_off(monkeypatch):
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")
    assert not kernels.fused_kernels_wanted()
    monkeypatch.setenv(kernels.ENV_SWITCH, "1")
    assert kernels.fused_kernels_wanted()
    monkeypatch.delenv(kernels.ENV_SWITCH)
    assert kernels.fused_kernels_wanted() == kernels.DEFAULT_ON


@pytest.mark.parametrize("level", ["O1", "O2", "O3"])
def test_amp_networks_train_the_same_with_the_fused_kernels(kernel_cache, graph_mode, tmp_path, monkeypatch, level):
    """Float32 norms use the kernels, float16 inputs the built-in ops: the same step either way."""
    from mszoo.engine.train_step import apply_amp
    from tests.engine.test_train_step import TinyNet, batch, make_step, run

    monkeypatch.chdir(tmp_path)  # O1 rewrites the network's source in the working directory
    x, y = batch()
    losses = []
    for fused_on in (False, True):
        net = apply_amp(TinyNet(), level, keep_bn_fp32=True)
        assert kernels.set_fused_kernels(net, fused_on) == fused_on
        assert any(getattr(c, "fused", None) is not None for _, c in net.cells_and_names()) == fused_on
        net_step, step = make_step(net=net)
        losses.append([run(step, x, y, 0.01)[0] for _ in range(2)])
        assert all(p.dtype == ms.float32 for p in net_step.get_parameters())
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)


def _square_sum(tensors, mode):
    class SquareSum(nn.Cell):
        def __init__(self):
            super().__init__()
            self.op = kernels.fused_ops(kernels.kernel_library())["square_sum"]

        def construct(self, xs):
            return self.op(*xs)

    ms.set_context(mode=mode)
    try:
        return SquareSum()(tuple(ms.Tensor(t) for t in tensors)).asnumpy()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.parametrize("mode", MODES)
def test_fused_square_sum_equals_float64_over_any_tensors_and_thread_count(kernel_cache, monkeypatch, mode):
    """One tensor or many, of any rank, across the 16,384-element block edge (the large ones on 3 threads)."""
    rng = np.random.RandomState(3)
    shapes = [(1,), (3, 5), (16384,), (16385,), (7, 3, 4, 5), (40000,), (96, 384)]
    tensors = [(rng.randn(*s) * 10 ** rng.uniform(-3, 3)).astype(np.float32) for s in shapes]
    for chosen in (tensors[:1], tensors[3:4], tensors):
        got = _square_sum(chosen, mode)
        assert got.shape == (1,) and got.dtype == np.float32
        expected = sum(float(np.sum(t.astype(np.float64) ** 2)) for t in chosen)
        assert got[0] == pytest.approx(expected, rel=2e-7)
    monkeypatch.setenv("MSZOO_KERNEL_THREADS", "1")
    np.testing.assert_array_equal(_square_sum(tensors, mode), got)


def test_fused_square_sum_is_not_finite_when_one_element_is_not(kernel_cache):
    for bad in (np.inf, -np.inf, np.nan):
        tensors = [np.ones((5, 4), np.float32), np.ones(20000, np.float32)]
        tensors[1][12345] = bad
        assert not np.isfinite(_square_sum(tensors, ms.PYNATIVE_MODE)[0])


@pytest.mark.parametrize("clip", [0.0, 0.5])
def test_the_train_step_takes_its_gradient_norm_from_the_fused_kernel(kernel_cache, graph_mode, clip):
    """build_train_step gives the step the kernel with the fused kernels (not without): the same norm, the same
    clipped update, and an overflow still skips the step."""
    from mszoo.config import parse_config
    from mszoo.engine.criterion import ClassificationLoss
    from mszoo.engine.optim import AdamW
    from mszoo.engine.train_step import build_train_step
    from tests.engine.test_train_step import TinyNet, batch, run, weights

    cfg, _ = parse_config(["--use_clip_grad_norm", str(clip > 0).lower(), "--clip_grad_norm", str(clip or 1.0),
                           "--loss_scale", "1"])
    x, y = batch()
    results = []
    for fused_on in (False, True):
        net = TinyNet()
        step = build_train_step(net, ClassificationLoss(0.0), AdamW(net.trainable_params(), 0.05), cfg,
                                group_size=1, fused_kernels=fused_on)
        assert (step.square_sum is not None) == fused_on
        norm = run(step, x, y, 0.1)[3]
        bad = x.copy()
        bad[2, 1] = np.nan
        _, overflow, _, bad_norm = run(step, bad, y, 0.1)
        assert overflow and not np.isfinite(bad_norm)
        results.append((norm, weights(net)))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-6)
    for name, value in results[0][1].items():
        np.testing.assert_allclose(results[1][1][name], value, rtol=0, atol=1e-6)


def test_the_train_step_keeps_the_builtin_norm_for_weights_that_are_not_float32(kernel_cache):
    from mszoo.engine.criterion import ClassificationLoss
    from mszoo.engine.optim import SGD
    from mszoo.engine.train_step import NetWithLoss, TrainStep

    net = nn.Dense(4, 2, weight_init=ms.Tensor(np.ones((2, 4), np.float16)), dtype=ms.float16)
    assert net.weight.dtype == ms.float16
    step = TrainStep(NetWithLoss(net, ClassificationLoss(0.0)), SGD(net.trainable_params(), 0.1))
    assert not step.use_square_sum_kernel(kernels.fused_ops(kernels.kernel_library())["square_sum"])
    assert step.square_sum is None


def test_mindspore_evaluation_and_inference_run_the_exact_kernels(kernel_cache, trained_tiny, monkeypatch):
    """eval.py's and infer.py's MindSpore models get the kernels (Twins' PEG, the unfolds: no convolution left, so
    those processes are uncapped), with the built-in ops' logits; ``MSZOO_FUSED_KERNELS=0`` keeps the built-in."""
    from mszoo.config import parse_config
    from mszoo.deploy.infer import Predictor
    from mszoo.engine import evaluator

    cfg, _ = parse_config(["--pretrained", trained_tiny["ckpt"]])
    predictor = Predictor(cfg, backend="mindspore")
    assert kernels.kernels_in_use(predictor.model)
    assert all(c.fused is not None for _, c in predictor.model.cells_and_names() if isinstance(c, PosConv))
    batch = np.random.RandomState(6).rand(4, 3, 16, 16).astype(np.float32)
    logits = predictor(batch)
    with kernels.builtin_ops(predictor.model):
        _close(logits, predictor(batch), rtol=1e-6)
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")
    assert not kernels.kernels_in_use(Predictor(cfg, backend="mindspore").model)
    monkeypatch.delenv(kernels.ENV_SWITCH)
    given = []
    monkeypatch.setattr(kernels, "use_fused_kernels", lambda model: given.append(model))
    cfg, _ = parse_config(["--pretrained", trained_tiny["ckpt"], "--data_url", trained_tiny["digits"],
                           "--val_num_samples", "8"])
    assert evaluator.evaluate_checkpoint(cfg) == 0
    assert len(given) == 1 and hasattr(given[0], "pos_block")
