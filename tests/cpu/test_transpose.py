"""Permute and SplitHeads: with the fused swap-axes kernel the exact numbers of the transposes they replace,
in value and gradient, without the 8-byte-per-element index table MindSpore's CPU Transpose keeps."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from mszoo.cpu import kernels
from mszoo.cpu.heap import release_free_heap
from mszoo.cpu.transpose import swap_groups
from mszoo.models.layers import Permute, SplitHeads
from tests.models.helpers import rss_mb

MODES = [ms.PYNATIVE_MODE, ms.GRAPH_MODE]
# (shape, perm): every form the models use, sizes not multiples of the 16 x 16 tiles, and one large
# enough to run on several threads
PERMUTES = [
    ((2, 3, 5, 7), (0, 2, 1, 3)),
    ((3, 37, 41), (0, 2, 1)),
    ((2, 3, 4, 5, 6, 7), (0, 1, 3, 2, 4, 5)),
    ((2, 3, 4, 5, 6), (0, 1, 3, 2, 4)),
    ((2, 5, 4, 3), (0, 3, 1, 2)),
    ((2, 330, 101), (0, 2, 1)),
    ((4, 196, 6, 24), (0, 2, 1, 3)),
    ((2, 9, 1, 4), (0, 2, 1, 3)),  # a single head: a reshape
]


def test_swap_groups_accepts_swaps_of_two_adjacent_groups_only():
    assert swap_groups((0, 2, 1, 3)) == (1, 2, 3)
    assert swap_groups((0, 3, 1, 2)) == (1, 3, 4)
    assert swap_groups((1, 0)) == (0, 1, 2)
    assert swap_groups((0, 1, 3, 2, 4, 5)) == (2, 3, 4)
    for perm in [(2, 0, 3, 1, 4), (0, 1, 2), (0, 2, 4, 1, 3, 5), (0, 0, 1)]:
        with pytest.raises(ValueError):
            swap_groups(perm)
    with pytest.raises(ValueError):
        Permute((2, 0, 3, 1, 4))


class _Vjp(nn.Cell):
    """(x, dy) -> (net(x), d/dx) with a weighted sum of every output, so each one's gradient counts."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.grad = ops.GradOperation(sens_param=True)

    def construct(self, x, dy):
        return self.net(x), self.grad(self.net)(x, dy)


def _values_and_gradient(cell, x, mode, kernel):
    ms.set_context(mode=mode)
    try:
        assert kernels.set_fused_kernels(cell, kernel) == kernel
        cell.set_train(True)
        out = cell(ms.Tensor(x))
        outs = out if isinstance(out, tuple) else (out,)
        dy = tuple(ms.Tensor(np.random.RandomState(i).randn(*o.shape).astype(np.float32)) for i, o in enumerate(outs))
        values, grad = _Vjp(cell)(ms.Tensor(x), dy if isinstance(out, tuple) else dy[0])
        values = values if isinstance(values, tuple) else (values,)
        return [v.asnumpy() for v in values], grad.asnumpy()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape, perm", PERMUTES)
def test_permute_kernel_equals_transpose_bit_for_bit_in_value_and_gradient(kernel_cache, mode, shape, perm):
    x = np.random.RandomState(0).randn(*shape).astype(np.float32)
    (got,), dx = _values_and_gradient(Permute(perm), x, mode, kernel=True)
    (ref,), dx_ref = _values_and_gradient(Permute(perm), x, mode, kernel=False)
    np.testing.assert_array_equal(got, np.transpose(x, perm))
    np.testing.assert_array_equal(ref, got)
    np.testing.assert_array_equal(dx, dx_ref)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape, parts, heads", [((2, 7, 3 * 4 * 5), 3, 4), ((2, 3, 9, 2 * 2 * 6), 2, 2),
                                                 ((3, 16, 2 * 1 * 8), 2, 1)])
def test_split_heads_kernel_equals_the_export_form_bit_for_bit(kernel_cache, mode, shape, parts, heads):
    x = np.random.RandomState(1).randn(*shape).astype(np.float32)
    got, dx = _values_and_gradient(SplitHeads(parts, heads), x, mode, kernel=True)
    ref, dx_ref = _values_and_gradient(SplitHeads(parts, heads), x, mode, kernel=False)
    head_dim = shape[-1] // (parts * heads)
    lead = shape[:-2]
    r = len(lead)
    perm = (r + 1,) + tuple(range(r)) + (r + 2, r, r + 3)  # parts first, heads before tokens
    expected = x.reshape(lead + (shape[-2], parts, heads, head_dim)).transpose(perm)
    assert len(got) == parts
    for i in range(parts):
        np.testing.assert_array_equal(ref[i], expected[i])
        np.testing.assert_array_equal(got[i], expected[i])
    np.testing.assert_array_equal(dx, dx_ref)


def test_the_kernel_runs_only_in_float32_training(kernel_cache):
    calls = []

    def spy(x):
        calls.append(x.shape)
        return ops.transpose(x, (0, 2, 1, 3))

    cell = Permute((0, 2, 1))
    cell.use_fused_ops({"swap_axes": spy})
    x = np.random.RandomState(2).randn(2, 3, 5).astype(np.float32)
    cell.set_train(False)
    np.testing.assert_array_equal(cell(ms.Tensor(x)).asnumpy(), x.transpose(0, 2, 1))
    cell.set_train(True)
    assert cell(ms.Tensor(x).astype(ms.float16)).dtype == ms.float16
    assert calls == []
    np.testing.assert_array_equal(cell(ms.Tensor(x)).asnumpy(), x.transpose(0, 2, 1))
    assert calls == [(2, 3, 5, 1)]


def test_training_transposes_with_the_kernel_keep_no_index_table(kernel_cache):
    """Ten head transposes of a (4, 3136, 4, 64) tensor, forward and backward: MindSpore's Transpose keeps
    8 bytes per element for each (~50 MB apiece); the kernel keeps nothing."""
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        x = ms.Tensor(np.random.RandomState(3).randn(4, 3136, 4, 64).astype(np.float32))
        grown = {}
        for kernel in (True, True, False):  # the first run touches the memory pool's pages; not counted
            chain = nn.SequentialCell([Permute((0, 2, 1, 3)) for _ in range(10)])
            kernels.set_fused_kernels(chain, kernel)
            chain.set_train(True)
            release_free_heap()  # else heap freed by earlier tests in this process can hold the tables unseen
            before = rss_mb()
            ops.GradOperation()(chain)(x).asnumpy()
            grown[kernel] = rss_mb() - before  # kernel: the second run
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert grown[True] < 0.4 * grown[False], grown
