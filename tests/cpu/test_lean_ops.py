"""Training-time Linear and DropPath: same numbers as the fused/broadcasting ops, without the memory that
MindSpore's CPU broadcasting kernels keep (16 bytes per output element per op, for the whole run)."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from mszoo.cpu.heap import release_free_heap
from mszoo.models.layers import AttnValues, DropPath, Linear, QKScores, Softmax
from tests.models.helpers import Vjp, rss_mb


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
@pytest.mark.parametrize("has_bias", [True, False])
def test_linear_training_path_equals_dense_in_value_and_gradient(mode, has_bias):
    ms.set_context(mode=mode)
    try:
        rng = np.random.RandomState(0)
        layer = Linear(6, 5, has_bias=has_bias)
        x = rng.randn(2, 3, 6).astype(np.float32)
        dy = rng.randn(2, 3, 5).astype(np.float32)
        w = layer.weight.asnumpy().astype(np.float64)
        b = layer.bias.asnumpy().astype(np.float64) if has_bias else np.zeros(5)
        layer.set_train(True)
        y, (grads_in, grads_w) = Vjp(layer)(ms.Tensor(x), ms.Tensor(dy))
        layer.set_train(False)
        y_eval = layer(ms.Tensor(x)).asnumpy()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    np.testing.assert_allclose(y.asnumpy(), x64 @ w.T + b, atol=1e-5)
    np.testing.assert_allclose(y.asnumpy(), y_eval, atol=1e-6)
    np.testing.assert_allclose(grads_in[0].asnumpy(), dy64 @ w, atol=1e-5)
    np.testing.assert_allclose(grads_w[0].asnumpy(), dy64.reshape(-1, 5).T @ x64.reshape(-1, 6), atol=1e-5)
    if has_bias:
        np.testing.assert_allclose(grads_w[1].asnumpy(), dy64.reshape(-1, 5).sum(0), atol=1e-5)


def test_drop_path_gradient_is_the_scaled_mask():
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        ms.set_seed(0)
        layer = DropPath(0.5)
        layer.set_train(True)
        x = np.ones((16, 3, 4), np.float32)
        dy = np.random.RandomState(1).randn(16, 3, 4).astype(np.float32)
        y, (grads_in, _) = Vjp(layer)(ms.Tensor(x), ms.Tensor(dy))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    y = y.asnumpy()
    mask = y[:, :1, :1]  # x is ones: the output is the per-sample mask, 0 or 1 / keep_prob
    assert set(np.unique(mask).tolist()) <= {0.0, 2.0} and 0 < (mask > 0).sum() < 16
    np.testing.assert_array_equal(y, np.broadcast_to(mask, y.shape))
    np.testing.assert_allclose(grads_in[0].asnumpy(), dy * mask, rtol=1e-6)


class _Chain(nn.Cell):
    def __init__(self, n, dim):
        super().__init__()
        self.layers = nn.CellList([Linear(dim, dim) for _ in range(n)])
        self.drop = DropPath(0.1)

    def construct(self, x):
        for layer in self.layers:
            x = self.drop(layer(x))
        return (x * x).mean()


def test_training_linear_and_drop_path_keep_no_broadcast_index_tables():
    """A chain of 8 Linear + DropPath on (8, 3136, 64) activations (6 MB each), compiled and run for training.
    With the broadcasting kernels (fused Dense's bias Add, mask Mul) their index tables took ~16 bytes per
    output element per op, forward and backward: > 400 MB here. Now only the pool's activations remain."""
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        net = _Chain(8, 64)
        net.set_train(True)
        grad = Vjp(net)
        x = ms.Tensor(np.random.RandomState(0).randn(8, 3136, 64).astype(np.float32))
        before = rss_mb()
        out = grad(x, ms.Tensor(np.float32(1.0)))
        out[0].asnumpy()
        grown = rss_mb() - before
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert grown < 200, f"compiling and running the chain grew RSS by {grown:.0f} MB"


class _Scores(nn.Cell):
    def __init__(self, ours):
        super().__init__()
        self.ours = ours
        self.scores = QKScores()
        self.softmax = Softmax()

    def construct(self, q, k):
        if self.ours:
            return self.softmax(self.scores(q, k))
        return ops.softmax(ops.matmul(q, k.swapaxes(-2, -1)), axis=-1)


class _InputVjp(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.grad = ops.GradOperation(get_all=True, sens_param=True)

    def construct(self, q, k, dy):
        return self.net(q, k), self.grad(self.net)(q, k, dy)


class _Values(nn.Cell):
    def __init__(self, ours):
        super().__init__()
        self.ours = ours
        self.attn_values = AttnValues()

    def construct(self, attn, v):
        return self.attn_values(attn, v) if self.ours else ops.matmul(attn, v)


def _inputs(rng, *shapes):
    return [ms.Tensor(rng.randn(*shape).astype(np.float32)) for shape in shapes]


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
@pytest.mark.parametrize("cell, shapes", [(_Scores, [(2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 5)]),
                                          (_Values, [(2, 3, 5, 5), (2, 3, 5, 4), (2, 3, 5, 4)])],
                         ids=["scores_softmax", "attn_values"])
def test_attention_cells_equal_the_builtin_ops_in_value_and_gradient(mode, cell, shapes):
    """QKScores + Softmax and AttnValues, training and eval, against ops.matmul/ops.softmax."""
    ms.set_context(mode=mode)
    try:
        a, b, dy = _inputs(np.random.RandomState(0), *shapes)
        results = []
        for ours in (True, False):
            net = cell(ours)
            net.set_train(True)
            y, grads = _InputVjp(net)(a, b, dy)
            net.set_train(False)
            results.append((y.asnumpy(), [g.asnumpy() for g in grads], net(a, b).asnumpy()))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    (y, grads, y_eval), (y_ref, grads_ref, _) = results
    np.testing.assert_allclose(y, y_ref, atol=1e-6)
    np.testing.assert_allclose(y_eval, y_ref, atol=1e-6)
    for g, g_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(g, g_ref, atol=1e-6)


class _SumOfSix(nn.Cell):
    """Six layers of ``cell`` applied to (a, b), summed: a graph with six of its forward and backward."""

    def __init__(self, cell, ours, combine):
        super().__init__()
        self.layers = nn.CellList([cell(ours) for _ in range(6)])
        self.combine = combine

    def construct(self, a, b):
        out = 0
        for layer in self.layers:
            out = out + self.combine(layer, a, b)
        return out


def _scores_both_ways(layer, a, b):
    return (layer(a, b) * layer(b, a)).sum()


def _squared_sum(layer, a, b):
    return layer(a, b).square().sum()


def _training_rss_growth(cell, combine, a, b):
    """RSS grown by compiling and running six ``cell`` layers forward and backward, ours and the built-in ops."""
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        grown = {}
        for ours in (True, True, False):  # the first run touches the memory pool's pages; not counted
            total = _SumOfSix(cell, ours, combine)
            total.set_train(True)
            release_free_heap()  # heap that earlier tests freed would hide the growth (the order decided it)
            before = rss_mb()
            ops.GradOperation(get_all=True)(total)(a, b)[0].asnumpy()
            grown[ours] = rss_mb() - before  # ours: the second run
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    return grown


def test_training_attention_scores_and_softmax_keep_no_index_tables():
    """Six q @ k^T + softmax on (8, 4, 256, 256) maps, forward and backward: the built-in softmax gradient's
    broadcasting Sub kept 16 bytes per map element (34 MB each) and k's transposes 8 bytes per element."""
    q, k = _inputs(np.random.RandomState(0), (8, 4, 256, 16), (8, 4, 256, 16))
    grown = _training_rss_growth(_Scores, _scores_both_ways, q, k)
    assert grown[True] < 0.6 * grown[False], grown


def test_training_attention_values_keep_no_transpose_index_tables():
    """Six attn @ v on TNT's inner shapes (batch 24), forward and backward: ops.matmul's gradient transposes attn
    and v with CPU Transpose kernels that keep an 8-byte index per element (~40 MB per layer here, more than
    earlier tests leave free in the heap); BatchMatMul's uses its flags."""
    attn, v = _inputs(np.random.RandomState(0), (4704, 4, 16, 16), (4704, 4, 16, 6))
    grown = _training_rss_growth(_Values, _squared_sum, attn, v)
    # By difference, not ratio: ours grew 5 MB in a fresh process but 50-54 MB after other graphs had run in it
    # (the built-in path 89-96 MB), so a ratio depended on which tests ran before in the same worker.
    assert grown[False] - grown[True] > 25, grown
