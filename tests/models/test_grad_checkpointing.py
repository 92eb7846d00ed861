"""grad_checkpointing: every family recomputes its blocks (MindSpore recompute) with unchanged gradients."""
import functools

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from mszoo.models import create_model
from tests.tiny import tiny_kwargs

# one model per distinct block type: PCPVT (GSA), SVT (LSA + GSA), TNT, T2T-ViT (token transformer + ViT)
MODELS = ["twins_pcpvt_small", "twins_svt_small", "tnt_s_patch16_224", "t2t_vit_t_14"]


class _LossGrads(nn.Cell):
    """Gradients of a fixed linear functional of the logits w.r.t. every trainable parameter."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.weights = ms.ParameterTuple(model.trainable_params())
        self.grad = ops.GradOperation(get_by_list=True)

    def loss(self, x, w):
        return (self.model(x) * w).sum()

    def construct(self, x, w):
        return self.grad(self.loss, self.weights)(x, w)


def _model(name, drop_path_rate=0.0):
    kwargs = tiny_kwargs(name)
    if name.startswith("twins_svt"):
        kwargs["wss"] = (2, 2, 1, 1)
        kwargs["depths"] = (2, 2, 1, 1)
    return create_model(name, num_classes=5, drop_path_rate=drop_path_rate, **kwargs)


def _grads(name, checkpointing, mode, drop_path_rate=0.0, seed=0):
    ms.set_context(mode=mode)
    try:
        ms.set_seed(seed)
        model = _model(name, drop_path_rate)
        if checkpointing:
            model.set_grad_checkpointing(True)
        model.set_train(True)
        size = tiny_kwargs(name)["img_size"]
        x = ms.Tensor(np.random.RandomState(0).randn(2, 3, size, size).astype(np.float32))
        w = ms.Tensor(np.random.RandomState(1).randn(2, 5).astype(np.float32))
        ms.set_seed(seed + 1)
        grads = _LossGrads(model)(x, w)
        return {p.name: g.asnumpy() for p, g in zip(model.trainable_params(), grads)}
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@functools.cache
def _plain_gradients(name, drop_path_rate=0.0):
    """The gradients without recomputation, in PyNative: it compiles nothing, and GRAPH mode gives the same numbers
    (tests/models/test_models.py)."""
    return _grads(name, False, ms.PYNATIVE_MODE, drop_path_rate)


@pytest.mark.parametrize("mode", [ms.GRAPH_MODE, ms.PYNATIVE_MODE], ids=["graph", "pynative"])
@pytest.mark.parametrize("name", MODELS)
def test_grad_checkpointing_leaves_gradients_unchanged(name, mode):
    plain = _plain_gradients(name)
    recomputed = _grads(name, True, mode)
    assert plain.keys() == recomputed.keys()
    for key, value in plain.items():
        np.testing.assert_allclose(recomputed[key], value, atol=1e-5, rtol=1e-5, err_msg=key)


def test_grad_checkpointing_recomputes_drop_path_with_the_forward_mask():
    """GRAPH mode: the recomputed block reuses the forward's drop-path masks (same seed, same masks)."""
    plain = _grads("twins_pcpvt_small", False, ms.GRAPH_MODE, drop_path_rate=0.5)
    recomputed = _grads("twins_pcpvt_small", True, ms.GRAPH_MODE, drop_path_rate=0.5)
    without_drop_path = _plain_gradients("twins_pcpvt_small")
    assert any(not np.allclose(plain[k], without_drop_path[k]) for k in plain)  # the masks do drop paths
    for key, value in plain.items():
        np.testing.assert_allclose(recomputed[key], value, atol=1e-5, rtol=1e-5, err_msg=key)


def test_grad_checkpointing_with_drop_path_is_refused_in_pynative_mode():
    model = _model("twins_pcpvt_small", drop_path_rate=0.1)
    with pytest.raises(ValueError, match="GRAPH mode"):
        model.set_grad_checkpointing(True)
    assert not model.grad_checkpointing


def test_grad_checkpointing_is_set_once_and_cannot_be_undone(graph_mode):
    model = _model("tnt_s_patch16_224")
    model.set_grad_checkpointing(False)  # never on: nothing to undo
    model.set_grad_checkpointing(True)
    model.set_grad_checkpointing(True)  # idempotent
    assert model.grad_checkpointing and all(blk.grad_checkpointing for blk in model.blocks)
    with pytest.raises(ValueError, match="cannot be turned off"):
        model.set_grad_checkpointing(False)


def test_grad_checkpointing_config_key_checkpoints_training_models_only(graph_mode):
    from mszoo.config import parse_config
    from mszoo.resolve import build_model

    args = ["--arch", "tnt_s_patch16_224", "--image_size", "32", "--num_classes", "5", "--model_kwargs",
            "{embed_dim: 32, inner_dim: 8, depth: 2, num_heads_outer: 2, num_heads_inner: 2}"]
    cfg, _ = parse_config(args + ["--grad_checkpointing", "true"])
    assert build_model(cfg).grad_checkpointing
    assert not build_model(cfg, training=False).grad_checkpointing
    cfg, _ = parse_config(args)
    assert not cfg.grad_checkpointing and not build_model(cfg).grad_checkpointing
