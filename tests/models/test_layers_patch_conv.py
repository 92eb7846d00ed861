"""``layers.PatchConv`` (stride == kernel) and ``layers.UnfoldConv``: convolutions as a matrix product equal Conv2d."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from mszoo.models.layers import PatchConv, UnfoldConv

# (in, out, patch, input (H, W)): Twins' first patch embedding, a stage transition, a spatial reduction with a
# remainder the valid convolution drops, and a rectangular patch.
CASES = [(3, 8, 4, (16, 16)), (6, 10, 2, (8, 6)), (5, 7, 4, (10, 9)), (4, 6, (2, 3), (6, 9))]


def _pair(conv_cell, patch_cell):
    patch_cell.weight.set_data(conv_cell.weight.data)
    patch_cell.bias.set_data(conv_cell.bias.data)
    return patch_cell


def _conv_tokens(conv, x):
    y = conv(x)
    b, c = y.shape[:2]
    return y.reshape(b, c, -1).transpose(0, 2, 1), tuple(y.shape[2:])


@pytest.mark.parametrize("cin,cout,patch,size", CASES)
def test_patch_conv_equals_conv2d_forward_and_gradients(cin, cout, patch, size):
    x = ms.Tensor(np.random.RandomState(0).randn(2, cin, *size).astype(np.float32))
    conv = nn.Conv2d(cin, cout, kernel_size=patch, stride=patch, pad_mode="valid", has_bias=True)
    cell = _pair(conv, PatchConv(cin, cout, patch))
    ref, ref_size = _conv_tokens(conv, x)
    out, out_size = cell(x)
    assert out_size == ref_size
    np.testing.assert_allclose(out.asnumpy(), ref.asnumpy(), rtol=0, atol=2e-6)
    tokens = x.transpose(0, 2, 3, 1).reshape(2, size[0] * size[1], cin)
    from_tokens, _ = cell.from_tokens(tokens, size)
    np.testing.assert_allclose(from_tokens.asnumpy(), ref.asnumpy(), rtol=0, atol=2e-6)

    def loss_of(net):
        return lambda inp: (ops.sin(net(inp)[0]) if net is cell else ops.sin(_conv_tokens(net, inp)[0])).sum()

    for net in (conv, cell):
        net.set_train(True)
    ref_grads = ms.grad(loss_of(conv), grad_position=0, weights=conv.trainable_params())(x)
    grads = ms.grad(loss_of(cell), grad_position=0, weights=cell.trainable_params())(x)
    np.testing.assert_allclose(grads[0].asnumpy(), ref_grads[0].asnumpy(), rtol=0, atol=2e-6)
    for got, want in zip(grads[1], ref_grads[1]):
        np.testing.assert_allclose(got.asnumpy(), want.asnumpy(), rtol=1e-5, atol=1e-5)


def test_patch_conv_keeps_conv2d_parameter_names_shapes_and_init_scale():
    conv = nn.Conv2d(3, 64, kernel_size=4, stride=4, pad_mode="valid", has_bias=True)
    cell = PatchConv(3, 64, 4)
    assert [(p.name, p.shape) for p in cell.get_parameters()] == [(p.name, p.shape) for p in conv.get_parameters()]
    bound = 1 / np.sqrt(3 * 16)  # Conv2d's default: HeUniform(sqrt(5)) weights and Uniform(1/sqrt(fan_in)) bias
    assert np.abs(cell.weight.asnumpy()).max() <= bound and np.abs(cell.weight.asnumpy()).max() > 0.9 * bound
    assert np.abs(cell.bias.asnumpy()).max() <= bound


@pytest.mark.parametrize("cin,cout,k,s,p,size", [(3, 6, 7, 4, 3, (16, 16)), (2, 5, 3, 2, 1, (9, 7))])
def test_unfold_conv_equals_conv2d_forward_and_weight_gradients(cin, cout, k, s, p, size):
    """TNT's pixel embedding (7x7, stride 4, padding 3 on 16x16 patches) and an odd-sized case."""
    x = ms.Tensor(np.random.RandomState(1).randn(3, cin, *size).astype(np.float32))
    conv = nn.Conv2d(cin, cout, kernel_size=k, stride=s, pad_mode="pad", padding=p, has_bias=True)
    cell = _pair(conv, UnfoldConv(cin, cout, k, stride=s, padding=p))
    assert [(q.name, q.shape) for q in cell.get_parameters()] == [(q.name, q.shape) for q in conv.get_parameters()]
    np.testing.assert_allclose(cell(x).asnumpy(), conv(x).asnumpy(), rtol=0, atol=2e-6)
    for net in (conv, cell):
        net.set_train(True)
    want = ms.grad(lambda inp: ops.sin(conv(inp)).sum(), grad_position=None, weights=conv.trainable_params())(x)
    got = ms.grad(lambda inp: ops.sin(cell(inp)).sum(), grad_position=None, weights=cell.trainable_params())(x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.asnumpy(), w.asnumpy(), rtol=1e-5, atol=1e-5)


def test_exportable_patch_conv_and_unfold_conv_compute_the_convolution():
    """ONNX / OpenVINO exports (``set_exportable``) keep a Conv node: same numbers through ``ops.conv2d``."""
    from mszoo.models.layers import set_exportable

    x = ms.Tensor(np.random.RandomState(2).randn(2, 3, 16, 16).astype(np.float32))
    for cell in (PatchConv(3, 5, 4), UnfoldConv(3, 5, 7, stride=4, padding=3)):
        cell.set_train(False)
        plain = cell(x)
        set_exportable(cell)
        exported = cell(x)
        plain, exported = (plain[0], exported[0]) if isinstance(cell, PatchConv) else (plain, exported)
        np.testing.assert_allclose(exported.asnumpy(), plain.asnumpy(), rtol=0, atol=2e-6)
    tokens = x.transpose(0, 2, 3, 1).reshape(2, 256, 3)
    cell = PatchConv(3, 5, 4)
    plain = cell.from_tokens(tokens, (16, 16))[0]
    set_exportable(cell)
    np.testing.assert_allclose(cell.from_tokens(tokens, (16, 16))[0].asnumpy(), plain.asnumpy(), rtol=0, atol=2e-6)
