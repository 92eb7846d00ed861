"""``layers.PatchConv``: the stride == kernel convolution as reshape + matrix product equals ``nn.Conv2d``."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from mszoo.models.layers import PatchConv

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
