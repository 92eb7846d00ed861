"""Checks every registered model passes (timm's tests/test_models.py over list_models()), with tiny widths.

Cheap checks run for every name; the ones that compile or differentiate run once per distinct tiny graph
(``tests.tiny.tiny_graph_groups``: the variants of a family differ only in widths and depths, which the tiny
overrides replace). Family files keep what is particular to a family (parity with timm / the official code,
checkpoint filters, attention layouts, exact no-weight-decay sets).
"""
import fnmatch

import mindspore as ms
import numpy as np
import pytest

from mszoo.models import SEED_CODE_VARIANTS, create_model, list_models
from mszoo.models.layers import DropPath
from tests.parity import TIMM_PARAM_COUNTS, count_params, timm_vs_ours, torch_and_timm
from tests.tiny import tiny_graph_groups, tiny_kwargs

ALL_MODELS = list_models()
NUM_CLASSES = 5

# Per family: overrides on top of tests/tiny.py, the input sizes (H, W) the checks run at (the first one for
# gradients and graph mode; all of them once per tiny graph), and the parameters that are fixed by design
# (not trained). The per-name checks run at QUICK_SIZE.
FAMILIES = {
    # two blocks per stage, so SVT runs both its local (even) and global (odd) attention blocks
    "twins_*": dict(extra=dict(depths=(2, 2, 2, 2)), sizes=[(64, 96), (64, 64), (96, 32)], fixed=()),
    "tnt_*": dict(extra={}, sizes=[(32, 32)], fixed=()),
    # the sinusoid position table and the performers' random features
    "t2t_vit_*": dict(extra={}, sizes=[(32, 32)], fixed=("pos_embed", "*.w")),
}


def _family(name):
    return next(spec for pattern, spec in FAMILIES.items() if fnmatch.fnmatch(name, pattern))


def _kwargs(name):
    return dict(tiny_kwargs(name), **_family(name)["extra"])


def _tiny(name, **kw):
    model = create_model(name, num_classes=NUM_CLASSES, **dict(_kwargs(name), **kw))
    model.set_train(False)
    return model


def _batch(hw, batch=2, seed=1):
    return ms.Tensor(np.random.RandomState(seed).randn(batch, 3, *hw).astype(np.float32))


GROUPS = tiny_graph_groups(_kwargs)
GRAPHS = sorted(GROUPS)
GROUP_IDS = ["+".join(GROUPS[name]) for name in GRAPHS]
ONE_PER_FAMILY = ["twins_svt_small", "tnt_s_patch16_224", "t2t_vit_t_14"]
QUICK_SIZE = (32, 32)  # every family's tiny img_size (tests/tiny.py)


def test_every_registered_model_is_covered():
    assert sorted(n for members in GROUPS.values() for n in members) == ALL_MODELS
    assert len(GROUPS) >= 6  # PCPVT, SVT, TNT, legacy TNT, performer and transformer T2T-ViT
    assert all(any(fnmatch.fnmatch(n, p) for p in FAMILIES) for n in ALL_MODELS)


@pytest.mark.parametrize("pattern", ["twins*", "tnt*"])
def test_registered_variants_are_timms(pattern):
    _, timm = torch_and_timm()
    ours = list_models(pattern, exclude_filters=SEED_CODE_VARIANTS)  # the seed codes' variants are not timm's
    assert ours == sorted(timm.list_models(pattern)) == sorted(fnmatch.filter(TIMM_PARAM_COUNTS, pattern))


@pytest.mark.parametrize("name", sorted(TIMM_PARAM_COUNTS))
def test_full_size_logits_and_param_count_match_timm(name, tmp_path):
    ref_out, our_out, ref, ours = timm_vs_ours(name, tmp_path, batch=1)
    assert count_params(ours) == TIMM_PARAM_COUNTS[name] == sum(p.numel() for p in ref.parameters())
    assert our_out.shape == ref_out.shape == (1, 1000)
    assert np.abs(ref_out - our_out).max() < 1e-4


def _check_forward(model, hw):
    x = _batch(hw)
    out = model(x).asnumpy()
    assert out.shape == (2, NUM_CLASSES) and np.isfinite(out).all(), hw
    feats = model.forward_features(x)
    assert feats.shape[0] == 2 and feats.shape[-1] == model.num_features
    pooled = model.forward_head(feats, pre_logits=True)
    assert pooled.shape == (2, model.num_features)
    np.testing.assert_allclose(model.forward_head(feats).asnumpy(), out, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_name_builds_with_the_standard_api(name):
    """no_weight_decay, reset_classifier (new head in the model's train/eval mode, 0 = no head, unknown pooling
    rejected) and drop-path rates, for every name; the forward passes run once per tiny graph (below)."""
    model = _tiny(name)
    names = model.no_weight_decay()
    assert names and names <= {p.name for p in model.trainable_params()}
    model.reset_classifier(7)
    assert model.num_classes == 7 and model.get_classifier() is model.head
    head_bias = {"head.bias": (7,)} if model.head_bias else {}  # a model without a head bias re-heads without one
    assert {p.name: tuple(p.shape) for p in model.get_parameters() if p.name.startswith("head.")} == \
        {"head.weight": (7, model.num_features), **head_bias}
    assert model.head.training is False  # the new head follows the model's eval mode
    model.set_train(True)
    model.reset_classifier(3)
    assert model.head.training is True
    model.reset_classifier(0)
    assert not [p for p in model.get_parameters() if p.name.startswith("head.")]
    with pytest.raises(ValueError, match="global_pool"):
        model.reset_classifier(3, global_pool="max")
    assert not [c for _, c in model.cells_and_names() if isinstance(c, DropPath)]
    rates = [c.drop_prob for _, c in _tiny(name, drop_path_rate=0.4).cells_and_names() if isinstance(c, DropPath)]
    assert rates and max(rates) == pytest.approx(0.4) and rates == sorted(rates)


@pytest.mark.parametrize("name", GRAPHS, ids=GROUP_IDS)
def test_forward_at_every_input_size_and_after_reset_classifier(name):
    model = _tiny(name)
    for hw in _family(name)["sizes"]:
        _check_forward(model, hw)
    x = _batch(QUICK_SIZE)
    model.reset_classifier(7)
    assert model(x).shape == (2, 7)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)


@pytest.mark.parametrize("name", GRAPHS, ids=GROUP_IDS)
def test_every_trainable_parameter_gets_a_finite_nonzero_gradient(name):
    model = _tiny(name)
    model.set_train(True)
    params = model.trainable_params()
    fixed = [p.name for p in model.get_parameters() if not p.requires_grad]
    assert sorted(fixed) == sorted(n for n in fixed if any(fnmatch.fnmatch(n, f) for f in _family(name)["fixed"]))
    assert len(params) + len(fixed) == len(list(model.get_parameters()))
    labels = ms.Tensor(np.array([1, 3], np.int32))
    loss_fn = ms.nn.CrossEntropyLoss()

    def forward(inp, lab):
        return loss_fn(model(inp), lab)

    _, grads = ms.value_and_grad(forward, None, params)(_batch(_family(name)["sizes"][0]), labels)
    assert len(grads) == len(params)
    bad = [p.name for p, g in zip(params, grads)
           if not np.isfinite(g.asnumpy()).all() or not np.abs(g.asnumpy()).max() > 0]
    assert not bad, f"parameters without a usable gradient: {bad}"


@pytest.mark.parametrize("name", GRAPHS, ids=GROUP_IDS)
def test_graph_mode_matches_pynative(name, pynative):
    model = _tiny(name)
    x = _batch(_family(name)["sizes"][0])
    eager = model(x).asnumpy()
    ms.set_context(mode=ms.GRAPH_MODE)
    graph = model(x).asnumpy()
    assert np.abs(eager - graph).max() < 1e-5


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_drop_path_is_identity_in_eval_and_stochastic_in_train(name):
    ms.set_seed(0)
    model = _tiny(name, drop_path_rate=0.8)
    plain = _tiny(name)
    weights = {p.name: ms.Parameter(ms.Tensor(p.asnumpy()), name=p.name) for p in model.get_parameters()}
    assert not ms.load_param_into_net(plain, weights)[0]
    x = _batch(QUICK_SIZE, batch=4)
    eval_out = model(x).asnumpy()
    np.testing.assert_array_equal(eval_out, model(x).asnumpy())
    np.testing.assert_allclose(eval_out, plain(x).asnumpy(), atol=1e-6, rtol=0)
    model.set_train(True)
    train_outs = [model(x).asnumpy() for _ in range(4)]
    assert any(np.abs(a - b).max() > 1e-4 for a, b in zip(train_outs, train_outs[1:]))
    assert any(np.abs(o - eval_out).max() > 1e-4 for o in train_outs)


def test_drop_path_rates_are_linear_from_zero_as_floats():
    from mszoo.models.layers import drop_path_rates

    rates = drop_path_rates(0.3, 4)
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3]) and all(type(r) is float for r in rates)
    assert drop_path_rates(0.3, 0) == [] and drop_path_rates(0.0, 2) == [0.0, 0.0]
