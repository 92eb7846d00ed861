"""Losses (label smoothing, soft targets) against PyTorch, and the EMA update formula."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from mszoo.engine.criterion import ClassificationLoss
from mszoo.engine.ema import EMA


def logits_and_labels(seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(6, 5).astype(np.float32) * 3, rng.randint(0, 5, 6).astype(np.int32)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_label_smoothing_cross_entropy_equals_torch(smoothing, pynative):
    import torch
    logits, labels = logits_and_labels()
    ours = float(ClassificationLoss(smoothing)(ms.Tensor(logits), ms.Tensor(labels)).asnumpy())
    theirs = float(torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels).long(),
                                                     label_smoothing=smoothing))
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_soft_targets_use_soft_target_cross_entropy(pynative):
    import torch
    from timm.loss import SoftTargetCrossEntropy

    logits, _ = logits_and_labels(1)
    rng = np.random.RandomState(2)
    targets = rng.dirichlet(np.ones(5), size=6).astype(np.float32)
    ours = float(ClassificationLoss(0.1)(ms.Tensor(logits), ms.Tensor(targets)).asnumpy())
    theirs = float(SoftTargetCrossEntropy()(torch.tensor(logits), torch.tensor(targets)))
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_ema_update_is_decay_times_ema_plus_one_minus_decay_times_weight(graph_mode):
    net = nn.Dense(3, 2)
    w0 = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    ema = EMA(net.get_parameters(), decay=0.9)
    assert [p.name for p in ema.state_parameters()] == ["ema.weight", "ema.bias"]
    new = {name: value + 1.0 for name, value in w0.items()}
    for p in net.get_parameters():
        p.set_data(ms.Tensor(new[p.name]))
    ema()
    ema()
    for name, value in ema.state_dict().items():
        once = 0.9 * w0[name] + 0.1 * new[name]
        np.testing.assert_allclose(value, 0.9 * once + 0.1 * new[name], rtol=1e-6, atol=1e-6)
    target = nn.Dense(3, 2)
    ema.copy_to(target)
    np.testing.assert_allclose(target.weight.asnumpy(), ema.state_dict()["weight"])
