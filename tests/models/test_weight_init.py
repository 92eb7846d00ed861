"""The truncated normal every model's Linear weights, class token and position tables are drawn from."""
import math

import mindspore as ms
import numpy as np
import pytest

from mszoo.models import create_model
from mszoo.models.layers.weight_init import trunc_normal_array
from tests.tiny import tiny_kwargs


def _truncated_moments(mean, std, a, b):
    """Mean and standard deviation of normal(mean, std) truncated to [a, b] (closed form)."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    mass = cdf(beta) - cdf(alpha)
    shift = (pdf(alpha) - pdf(beta)) / mass
    var = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass - shift ** 2
    return mean + std * shift, std * math.sqrt(var)


@pytest.mark.parametrize("bounds", [(-2.0, 2.0), (-0.01, 0.03), (0.0, 0.05)])
def test_trunc_normal_array_draws_the_truncated_normal(bounds):
    np.random.seed(0)
    a, b = bounds
    x = trunc_normal_array((400, 1000), std=0.02, a=a, b=b)
    assert x.dtype == np.float32 and x.shape == (400, 1000)
    assert a <= x.min() and x.max() <= b  # values outside were redrawn, not clipped onto the bounds
    assert (x == a).sum() + (x == b).sum() < 5
    mean, std = _truncated_moments(0.0, 0.02, a, b)
    assert abs(x.mean() - mean) < 4 * std / math.sqrt(x.size)
    assert abs(x.std() - std) / std < 0.01


def test_trunc_normal_array_rejects_an_empty_interval():
    with pytest.raises(ValueError, match="empty interval"):
        trunc_normal_array((3,), a=1.0, b=1.0)


@pytest.mark.parametrize("name", ["twins_svt_small", "tnt_s_patch16_224", "t2t_vit_14"])
def test_mindspore_set_seed_repeats_a_model_s_initial_weights_and_another_seed_changes_them(name):
    def weights(seed):
        ms.set_seed(seed)
        model = create_model(name, num_classes=4, **tiny_kwargs(name))
        return {p.name: p.asnumpy() for p in model.get_parameters()}

    first, again, other = weights(1), weights(1), weights(2)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    drawn = [k for k in first if k.endswith(".weight") and first[k].std() > 0]  # not norms, nor sinusoid tables
    assert drawn and all(not np.array_equal(first[k], other[k]) for k in drawn)
