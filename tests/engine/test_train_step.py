"""The compiled train step: loss scale and overflow skipping, clipping, accumulation, lr argument, EMA, AMP."""
import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from mszoo.engine.criterion import ClassificationLoss
from mszoo.engine.ema import EMA
from mszoo.engine.optim import SGD, AdamW
from mszoo.engine.train_step import NetWithLoss, TrainStep, apply_amp
from mszoo.models.layers import GELU, LayerNorm, Linear


class TinyNet(nn.Cell):
    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.RandomState(seed)
        self.fc1 = Linear(6, 8)  # ours (fused Dense op) and MindSpore's nn.Dense both get AMP
        self.norm = LayerNorm(8)
        self.act = GELU()
        self.fc2 = nn.Dense(8, 3)
        for p in self.get_parameters():  # deterministic, independent of MindSpore's RNG
            p.set_data(ms.Tensor(rng.randn(*p.shape).astype(np.float32) * 0.5))

    def construct(self, x):
        return self.fc2(self.act(self.norm(self.fc1(x))))


class OneLayer(nn.Cell):
    def __init__(self, layer):
        super().__init__()
        self.fc = layer(6, 3)

    def construct(self, x):
        return self.fc(x)


def batch(n=8, seed=1):
    rng = np.random.RandomState(seed)
    return rng.randn(n, 6).astype(np.float32), rng.randint(0, 3, n).astype(np.int32)


def make_step(net=None, opt="sgd", loss_scale=1024.0, dynamic=True, window=1000, clip=0.0, accum=1, ema_decay=None):
    net = net or TinyNet()
    params = net.trainable_params()
    optimizer = SGD(params, 0.0, momentum=0.0) if opt == "sgd" else AdamW(params, 0.05)
    ema = EMA(net.get_parameters(), ema_decay) if ema_decay is not None else None
    step = TrainStep(NetWithLoss(net, ClassificationLoss(0.0)), optimizer, loss_scale=loss_scale,
                     dynamic_loss_scale=dynamic, scale_window=window, clip_grad_norm=clip,
                     accumulation_steps=accum, ema=ema)
    step.set_train(True)
    return net, step


def weights(net):
    return {p.name: p.asnumpy().copy() for p in net.get_parameters()}


def max_diff(a, b):
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def run(step, x, y, lr):
    return step.run([(ms.Tensor(x), ms.Tensor(y))], lr)


@pytest.mark.parametrize("mode", ["graph", "pynative"])
def test_overflow_skips_the_update_and_halves_the_dynamic_scale(mode, graph_mode):
    if mode == "pynative":
        ms.set_context(mode=ms.PYNATIVE_MODE)  # the graph_mode fixture restores the default afterwards
    net, step = make_step(opt="adamw", loss_scale=1024.0, dynamic=True)
    x, y = batch()
    before = weights(net)
    bad = x.copy()
    bad[0, 0] = np.inf
    loss, overflow, scale, norm = run(step, bad, y, 0.1)
    assert overflow and scale == 1024.0 and not np.isfinite(norm)
    assert max_diff(weights(net), before) == 0.0
    assert int(step.optimizer.step.asnumpy()) == 0  # AdamW's bias-correction count did not advance
    assert all(float(np.abs(p.asnumpy()).max()) == 0.0 for p in step.optimizer.state_parameters())
    assert float(step.loss_scale.asnumpy()) == 512.0
    assert int(step.overflow_count.asnumpy()) == 1
    _, overflow, scale, _ = run(step, x, y, 0.1)  # a good step applies and uses the lowered scale
    assert not overflow and scale == 512.0
    assert max_diff(weights(net), before) > 0.0


def test_static_scale_skips_overflow_but_keeps_the_scale(graph_mode):
    net, step = make_step(loss_scale=128.0, dynamic=False)
    x, y = batch()
    bad = x.copy()
    bad[1, 2] = np.nan
    _, overflow, _, _ = run(step, bad, y, 0.1)
    assert overflow and float(step.loss_scale.asnumpy()) == 128.0 and int(step.overflow_count.asnumpy()) == 1


def test_dynamic_scale_doubles_after_a_window_of_good_steps(graph_mode):
    _, step = make_step(loss_scale=8.0, dynamic=True, window=2)
    x, y = batch()
    scales = [run(step, x, y, 0.01)[2] for _ in range(5)]
    assert scales == [8.0, 8.0, 16.0, 16.0, 32.0]


def test_loss_scale_does_not_change_the_update(graph_mode):
    x, y = batch()
    net_a, step_a = make_step(loss_scale=1.0, dynamic=False)
    net_b, step_b = make_step(loss_scale=4096.0, dynamic=False)
    run(step_a, x, y, 0.1)
    run(step_b, x, y, 0.1)
    assert max_diff(weights(net_a), weights(net_b)) < 1e-6


def test_clipping_bounds_the_global_norm_and_reports_the_norm_before_clipping(graph_mode):
    x, y = batch()
    net_free, step_free = make_step(dynamic=False, loss_scale=1.0)
    start = weights(net_free)
    _, _, _, norm = run(step_free, x, y, 1.0)
    free_update = np.sqrt(sum(((weights(net_free)[k] - start[k]) ** 2).sum() for k in start))
    assert norm == pytest.approx(free_update, rel=1e-4)  # SGD, lr 1: the update is the gradient
    clip = norm / 4
    net_clip, step_clip = make_step(dynamic=False, loss_scale=1.0, clip=clip)
    _, _, _, reported = run(step_clip, x, y, 1.0)
    clipped_update = np.sqrt(sum(((weights(net_clip)[k] - start[k]) ** 2).sum() for k in start))
    assert reported == pytest.approx(norm, rel=1e-5)
    assert clipped_update == pytest.approx(clip, rel=1e-4)
    net_big, step_big = make_step(dynamic=False, loss_scale=1.0, clip=norm * 10)  # no effect below the bound
    run(step_big, x, y, 1.0)
    assert max_diff(weights(net_big), weights(net_free)) < 1e-6


def test_accumulating_two_batches_of_4_equals_one_batch_of_8(graph_mode):
    x, y = batch(8)
    net_one, step_one = make_step(opt="adamw", dynamic=True)
    net_acc, step_acc = make_step(opt="adamw", dynamic=True, accum=2)
    for _ in range(2):
        loss_one = run(step_one, x, y, 0.01)[0]
        loss_acc = step_acc.run([(ms.Tensor(x[:4]), ms.Tensor(y[:4])), (ms.Tensor(x[4:]), ms.Tensor(y[4:]))],
                                0.01)[0]
        assert loss_acc == pytest.approx(loss_one, rel=1e-5)
    assert max_diff(weights(net_acc), weights(net_one)) < 1e-5
    assert max(float(np.abs(b.asnumpy()).max()) for b in step_acc.accum) == 0.0  # buffers emptied
    with pytest.raises(ValueError, match="micro-batches"):
        step_acc.run([(ms.Tensor(x), ms.Tensor(y))], 0.01)


def test_the_lr_argument_is_the_lr_used_by_the_compiled_step(graph_mode):
    import torch
    x, y = batch()
    net, step = make_step(dynamic=False, loss_scale=1.0)
    ref = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in weights(net).items()}
    topt = torch.optim.SGD(list(ref.values()), lr=1.0)
    lrs = [0.0, 0.3, 0.0, 0.05, 0.2]
    for lr in lrs:
        before = weights(net)
        run(step, x, y, lr)
        if lr == 0.0:
            assert max_diff(weights(net), before) == 0.0
        for group in topt.param_groups:
            group["lr"] = lr
        topt.zero_grad()
        h = torch.nn.functional.linear(torch.tensor(x), ref["fc1.weight"], ref["fc1.bias"])
        h = torch.nn.functional.layer_norm(h, (8,), ref["norm.weight"], ref["norm.bias"])
        logits = torch.nn.functional.linear(torch.nn.functional.gelu(h), ref["fc2.weight"], ref["fc2.bias"])
        torch.nn.functional.cross_entropy(logits, torch.tensor(y).long()).backward()
        topt.step()
        ours = weights(net)
        for k, v in ref.items():
            np.testing.assert_allclose(ours[k], v.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_ema_follows_each_applied_step_and_skips_overflow(graph_mode):
    net, step = make_step(ema_decay=0.75)
    x, y = batch()
    w0 = weights(net)
    run(step, x, y, 0.1)
    w1 = weights(net)
    ema = step.ema.state_dict()
    for k in w0:
        np.testing.assert_allclose(ema[k], 0.75 * w0[k] + 0.25 * w1[k], rtol=1e-5, atol=1e-6)
    bad = x.copy()
    bad[0, 0] = np.inf
    run(step, bad, y, 0.1)
    assert max_diff(step.ema.state_dict(), ema) == 0.0


@pytest.mark.parametrize("level", ["O2", "O3"])
def test_amp_levels_train_with_float32_weights_and_norms_kept_float32(level, graph_mode):
    x, y = batch()
    reference = TinyNet()(ms.Tensor(x)).asnumpy()
    net = apply_amp(TinyNet(), level, keep_bn_fp32=True)
    half = net(ms.Tensor(x))
    assert half.dtype == ms.float32  # logits come back as float32
    assert 0.0 < float(np.abs(half.asnumpy() - reference).max()) < 2e-2  # computed in float16
    norms = [c for _, c in net.cells_and_names() if isinstance(c, LayerNorm)]
    assert norms and all(n.get_flags()["fp32"] and not n.get_flags()["fp16"] for n in norms)
    dense = [c for _, c in net.cells_and_names() if isinstance(c, (nn.Dense, Linear))]
    assert len(dense) == 2 and all(d.get_flags()["fp16"] for d in dense)
    net_step, step = make_step(net=net)
    loss, overflow, _, _ = run(step, x, y, 0.01)
    assert np.isfinite(loss) and not overflow
    assert all(p.dtype == ms.float32 for p in net_step.get_parameters())
    assert sorted(p.name for p in net_step.get_parameters()) == sorted(weights(TinyNet()))


def test_keep_bn_fp32_false_casts_the_norms_too(graph_mode):
    net = apply_amp(TinyNet(), "O3", keep_bn_fp32=False)
    norms = [c for _, c in net.cells_and_names() if isinstance(c, LayerNorm)]
    assert norms and all(n.get_flags()["fp16"] for n in norms)


@pytest.mark.parametrize("layer", [Linear, nn.Dense])
def test_amp_o1_computes_our_linear_and_mindspore_dense_in_float16(layer, tmp_path, monkeypatch, graph_mode):
    monkeypatch.chdir(tmp_path)
    x, _ = batch()
    net = OneLayer(layer)
    reference = net(ms.Tensor(x)).asnumpy()
    half = apply_amp(net, "O1")(ms.Tensor(x))
    assert half.dtype == ms.float32
    assert 0.0 < float(np.abs(half.asnumpy() - reference).max()) < 1e-2  # rounded through float16


def test_amp_o1_leaves_no_rewritten_network_folder_in_the_cwd(tmp_path, monkeypatch, graph_mode):
    monkeypatch.chdir(tmp_path)
    net = apply_amp(TinyNet(), "O1")
    _, step = make_step(net=net)
    x, y = batch()
    loss = run(step, x, y, 0.01)[0]
    assert np.isfinite(loss)
    assert os.listdir(tmp_path) == []


def test_first_run_compiles_the_step_then_releases_the_freed_heap_once(monkeypatch, graph_mode):
    import mszoo.engine.train_step as train_step

    _, step = make_step(accum=2)
    events = []
    for cls, name in ((TrainStep, "step"), (type(step.accumulator), "accumulator")):
        monkeypatch.setattr(cls, "compile", lambda self, *args, _name=name, _compile=cls.compile: (
            events.append(_name), _compile(self, *args))[1])
    monkeypatch.setattr(train_step, "release_free_heap",
                        lambda: events.append(("release after steps", int(step.good_steps.asnumpy()))))
    x, y = batch()
    for _ in range(2):
        step.run([(ms.Tensor(x[:4]), ms.Tensor(y[:4])), (ms.Tensor(x[4:]), ms.Tensor(y[4:]))], 0.1)
    releases = [i for i, event in enumerate(events) if isinstance(event, tuple)]
    assert len(releases) == 1 and events[releases[0]] == ("release after steps", 0)
    assert {"step", "accumulator"} <= set(events[:releases[0]])
    assert int(step.good_steps.asnumpy()) == 2
