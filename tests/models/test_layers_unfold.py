"""``layers.Unfold`` (im2col without nn.Unfold / Im2Col) against ``torch.nn.functional.unfold``."""
import os

import mindspore as ms
import numpy as np
import pytest

from mszoo.models.layers import Unfold, UnfoldRows, unfold_output_size

# (kernel, stride, padding, dilation, input shape): T2T-ViT's three soft splits, then edge cases.
CASES = [
    (7, 4, 2, 1, (2, 3, 224, 224)),
    (3, 2, 1, 1, (2, 64, 56, 56)),
    (3, 2, 1, 1, (2, 64, 28, 28)),
    (7, 4, 2, 1, (1, 2, 70, 53)),  # not a multiple of the stride, not square
    (2, 5, 0, 1, (1, 2, 17, 13)),  # stride larger than the kernel
    (3, 1, 0, 1, (1, 3, 9, 8)),  # stride 1
    ((3, 2), (1, 2), (0, 1), (2, 1), (1, 5, 11, 9)),  # rectangular, dilated
    (4, 4, 0, 1, (2, 3, 16, 16)),  # non-overlapping patches
    (5, 3, 2, 2, (1, 2, 19, 21)),  # dilated with padding
]


def _torch_unfold(x, k, s, p, d):
    import torch
    return torch.nn.functional.unfold(torch.from_numpy(x), k, dilation=d, padding=p, stride=s).numpy()


def _input(shape, seed=0):
    return np.random.RandomState(seed).randn(*shape).astype(np.float32)


@pytest.mark.parametrize("k,s,p,d,shape", CASES)
def test_unfold_equals_torch_exactly(k, s, p, d, shape):
    x = _input(shape)
    ref = _torch_unfold(x, k, s, p, d)
    out = Unfold(k, dilation=d, padding=p, stride=s)(ms.Tensor(x)).asnumpy()
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("k,s,p,d,shape", [CASES[0], CASES[3], CASES[6]])
def test_unfold_graph_mode_equals_torch(k, s, p, d, shape, graph_mode):
    x = _input(shape, seed=1)
    out = Unfold(k, dilation=d, padding=p, stride=s)(ms.Tensor(x)).asnumpy()
    np.testing.assert_array_equal(out, _torch_unfold(x, k, s, p, d))


def test_unfold_keeps_grid_without_flatten_and_has_no_parameters():
    x = _input((2, 4, 30, 22))
    cell = Unfold(3, padding=1, stride=2, flatten=False)
    out = cell(ms.Tensor(x))
    assert out.shape == (2, 4 * 9) + unfold_output_size((30, 22), 3, 2, 1) == (2, 36, 15, 11)
    np.testing.assert_array_equal(out.asnumpy().reshape(2, 36, -1), _torch_unfold(x, 3, 2, 1, 1))
    assert not list(cell.get_parameters())


@pytest.mark.parametrize("k,s,p,d,shape", [CASES[1], CASES[3], CASES[4]])
def test_unfold_rows_are_torch_unfold_transposed_on_their_grid(k, s, p, d, shape):
    x = _input(shape, seed=2)
    cell = UnfoldRows(k, stride=s, padding=p)
    rows = cell(ms.Tensor(x)).asnumpy()
    np.testing.assert_array_equal(rows, _torch_unfold(x, k, s, p, d).transpose(0, 2, 1))
    grid = cell.grid(shape[2:])
    assert grid == unfold_output_size(shape[2:], k, s, p) and rows.shape[1] == grid[0] * grid[1]


@pytest.mark.parametrize("k,s,p,d,shape", [CASES[3], CASES[8]])
def test_unfold_gradient_equals_torch(k, s, p, d, shape):
    import torch
    x = _input(shape, seed=2)
    cell = Unfold(k, dilation=d, padding=p, stride=s)
    weight = np.random.RandomState(3).randn(*_torch_unfold(x, k, s, p, d).shape).astype(np.float32)

    def loss(inp):
        return (cell(inp) * ms.Tensor(weight)).sum()

    grad = ms.grad(loss)(ms.Tensor(x)).asnumpy()
    tx = torch.from_numpy(x).requires_grad_(True)
    (torch.nn.functional.unfold(tx, k, dilation=d, padding=p, stride=s) * torch.from_numpy(weight)).sum().backward()
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_unfold_exports_to_onnx(tmp_path):
    import onnxruntime as ort
    x = _input((1, 3, 32, 32))
    cell = Unfold(7, padding=2, stride=4)
    path = os.path.join(str(tmp_path), "unfold")
    ms.export(cell, ms.Tensor(x), file_name=path, file_format="ONNX")
    sess = ort.InferenceSession(path + ".onnx")
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_array_equal(out, _torch_unfold(x, 7, 4, 2, 1))
