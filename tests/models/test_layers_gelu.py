"""GELU: exact erf GELU with a hand-written gradient, equal to PyTorch's in value and gradient; GELUTanh: the
tanh approximation that MindSpore's ``nn.GELU()`` computes (the model-zoo readmes' models)."""
import mindspore as ms
import numpy as np
import pytest

from mszoo.models.layers import GELU, GELUTanh


def _torch_gelu_and_grad(x, dy):
    import torch
    t = torch.tensor(x, requires_grad=True)
    y = torch.nn.functional.gelu(t, approximate="none")
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), t.grad.numpy()


class _GeluVjp(ms.nn.Cell):
    """(x, dy) -> (GELU(x), dy * GELU'(x)) through MindSpore's autodiff (uses the cell's bprop)."""

    def __init__(self):
        super().__init__()
        self.gelu = GELU()
        self.grad = ms.ops.GradOperation(sens_param=True)

    def construct(self, x, dy):
        return self.gelu(x), self.grad(self.gelu)(x, dy)


def _float64_reference(x, dy):
    import math

    xd = x.astype(np.float64)
    cdf = 0.5 * (1.0 + np.array([math.erf(v / math.sqrt(2.0)) for v in xd]))
    pdf = np.exp(-0.5 * xd * xd) / math.sqrt(2.0 * math.pi)
    return xd * cdf, dy * (cdf + xd * pdf)


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_gelu_value_and_gradient_are_exact_gelu(mode):
    ms.set_context(mode=mode)
    try:
        rng = np.random.RandomState(0)
        x = np.concatenate([np.linspace(-8, 8, 997), rng.randn(3000) * 3]).astype(np.float32)
        dy = rng.randn(x.size).astype(np.float32)
        y, dx = _GeluVjp()(ms.Tensor(x), ms.Tensor(dy))
        ref_y, ref_dx = _float64_reference(x, dy)
        ty, tdx = _torch_gelu_and_grad(x, dy)
        # float32 rounding only: torch's own errors here are 1.0e-6 (value) and 4.8e-7 (gradient)
        np.testing.assert_allclose(y.asnumpy(), ref_y, atol=2e-6, rtol=0)
        np.testing.assert_allclose(dx.asnumpy(), ref_dx, atol=5e-6, rtol=0)
        np.testing.assert_allclose(y.asnumpy(), ty, atol=3e-6, rtol=0)
        np.testing.assert_allclose(dx.asnumpy(), tdx, atol=5e-6, rtol=0)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


def test_exportable_gelu_stays_within_the_erf_approximation():
    x = np.linspace(-6, 6, 2001).astype(np.float32)
    exact = GELU()(ms.Tensor(x)).asnumpy()
    gelu = GELU()
    gelu.exportable = True
    approx = gelu(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(approx, exact, atol=1e-6)


def test_gelu_tanh_is_mindspores_default_nn_gelu_in_value_and_gradient():
    x = np.concatenate([np.linspace(-8, 8, 997), np.random.RandomState(0).randn(1000) * 3]).astype(np.float32)
    ours, theirs = GELUTanh(), ms.nn.GELU()  # nn.GELU() is approximate=True: what the model-zoo readmes trained with
    np.testing.assert_allclose(ours(ms.Tensor(x)).asnumpy(), theirs(ms.Tensor(x)).asnumpy(), atol=1e-6, rtol=0)
    grad = ms.ops.GradOperation()
    np.testing.assert_allclose(grad(ours)(ms.Tensor(x)).asnumpy(), grad(theirs)(ms.Tensor(x)).asnumpy(),
                               atol=1e-5, rtol=0)
    assert np.abs(ours(ms.Tensor(x)).asnumpy() - GELU()(ms.Tensor(x)).asnumpy()).max() > 1e-4  # not the exact one
