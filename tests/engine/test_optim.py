"""Optimizers: one step equals PyTorch's (AdamW, Adam, SGD, Nesterov) and timm's Lamb; weight-decay groups."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from mszoo.config import parse_config
from mszoo.engine.optim import SGD, Adam, AdamW, Lamb, create_optimizer, param_groups_weight_decay

LR, WD = 0.05, 0.1


class TwoParams(nn.Cell):
    def __init__(self, w, b):
        super().__init__()
        self.weight = ms.Parameter(ms.Tensor(w.copy()), name="fc.weight")
        self.bias = ms.Parameter(ms.Tensor(b.copy()), name="fc.bias")


def run_ours(make_opt, w, b, grads, lrs):
    net = TwoParams(w, b)
    opt = make_opt(list(net.get_parameters()))
    for (gw, gb), lr in zip(grads, lrs):
        opt((ms.Tensor(gw), ms.Tensor(gb)), ms.Tensor(np.float32(lr)))
    return net.weight.asnumpy(), net.bias.asnumpy(), opt


def run_torch(make_opt, w, b, grads, lrs):
    import torch
    tw, tb = torch.nn.Parameter(torch.tensor(w)), torch.nn.Parameter(torch.tensor(b))
    opt = make_opt([{"params": [tw], "weight_decay": WD}, {"params": [tb], "weight_decay": 0.0}])
    for (gw, gb), lr in zip(grads, lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        opt.step()
    return tw.detach().numpy(), tb.detach().numpy()


def data(steps=3, seed=0):
    rng = np.random.RandomState(seed)
    w, b = rng.randn(4, 5).astype(np.float32), rng.randn(4).astype(np.float32)
    grads = [(rng.randn(4, 5).astype(np.float32), rng.randn(4).astype(np.float32)) for _ in range(steps)]
    return w, b, grads, [LR, LR * 0.5, LR * 2][:steps]


def torch_optim(name):
    import torch
    if name == "adamw":
        return lambda groups: torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.999), eps=1e-8)
    if name == "adam":
        return lambda groups: torch.optim.Adam(groups, lr=LR, betas=(0.9, 0.999), eps=1e-8)
    if name == "sgd":
        return lambda groups: torch.optim.SGD(groups, lr=LR, momentum=0.9)
    if name == "nesterov":
        return lambda groups: torch.optim.SGD(groups, lr=LR, momentum=0.9, nesterov=True)
    from timm.optim import Lamb as TimmLamb

    return lambda groups: TimmLamb(groups, lr=LR, betas=(0.9, 0.999), eps=1e-6, max_grad_norm=None)


OURS = {
    "adamw": lambda ps: AdamW(ps, WD, betas=(0.9, 0.999), eps=1e-8),
    "adam": lambda ps: Adam(ps, WD, betas=(0.9, 0.999), eps=1e-8),
    "sgd": lambda ps: SGD(ps, WD, momentum=0.9),
    "nesterov": lambda ps: SGD(ps, WD, momentum=0.9, nesterov=True),
    "lamb": lambda ps: Lamb(ps, WD, betas=(0.9, 0.999), eps=1e-6),
}


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd", "nesterov", "lamb"])
def test_steps_equal_the_pytorch_reference(name, graph_mode):
    w, b, grads, lrs = data()
    ow, ob, opt = run_ours(OURS[name], w, b, grads, lrs)
    tw, tb = run_torch(torch_optim(name), w, b, grads, lrs)
    np.testing.assert_allclose(ow, tw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ob, tb, rtol=1e-5, atol=1e-6)
    assert int(opt.step.asnumpy()) == 3


def test_adamw_first_step_has_bias_correction(pynative):
    # With bias correction the first AdamW step moves each weight by ~lr (sign of the gradient).
    w = np.zeros((1, 3), np.float32)
    b = np.zeros(1, np.float32)
    grads = [(np.array([[1e-3, -2.0, 30.0]], np.float32), np.array([0.5], np.float32))]
    ow, ob, _ = run_ours(lambda ps: AdamW(ps, 0.0), w, b, grads, [0.1])
    np.testing.assert_allclose(ow, [[-0.1, 0.1, -0.1]], rtol=1e-4)


def test_no_weight_decay_for_biases_norms_and_listed_names():
    params = [ms.Parameter(ms.Tensor(np.zeros(s, np.float32)), name=n) for n, s in [
        ("blocks.0.fc.weight", (4, 4)), ("blocks.0.fc.bias", (4,)), ("norm.weight", (4,)),
        ("pos_embed", (1, 5, 4)), ("cls_token", (1, 1, 4)), ("pos_block.0.proj.0.weight", (4, 1, 3, 3)),
        ("head.weight", (2, 4))]]
    wds = param_groups_weight_decay(params, 0.05, {"pos_embed", "cls_token", "pos_block"})
    assert wds == [0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05]


def test_create_optimizer_uses_the_model_list_and_config(pynative):
    from mszoo.models import create_model

    model = create_model("twins_pcpvt_small", num_classes=3, embed_dims=(16,), depths=(1,), num_heads=(1,),
                         mlp_ratios=(2,), sr_ratios=(1,), patch_size=2, img_size=16)
    cfg, _ = parse_config(["--optimizer", "sgd", "--nesterov", "true", "--weight_decay", "0.01"])
    opt = create_optimizer(cfg, model.trainable_params(), model.no_weight_decay())
    assert isinstance(opt, SGD) and opt.nesterov
    decay = {p.name: wd for p, wd in zip(opt.parameters, opt.weight_decays)}
    assert decay["head.weight"] == 0.01
    assert decay["head.bias"] == 0.0
    assert decay["pos_block.0.proj.0.weight"] == 0.0  # Twins lists its PEG convolutions
    assert {p.name.split(".", 2)[1] for p in opt.state_parameters() if p.name != "optimizer.step"} == \
        {"momentum_buffer"}
