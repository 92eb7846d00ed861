"""Optimizers: adamw, adam, momentum/sgd (Nesterov option) and lamb, written as graph-friendly cells.

Every optimizer takes the learning rate as a Tensor argument of ``construct(grads, lr)``, so the value
computed on the host by the schedule is the one the compiled step really uses (changing a Parameter
from the host between calls of a compiled graph is not reliable). The update formulas are PyTorch's
(``torch.optim.AdamW`` / ``Adam`` / ``SGD`` and timm's ``Lamb``), including Adam's bias correction,
so a step here equals a step there on the same numbers.

Weight decay is split as timm does (``param_groups_weight_decay``): no decay for 1-D parameters
(biases, norm scales), names ending in ``.bias`` and the names the model lists in
``no_weight_decay()`` (position embeddings, class tokens, PEG convolutions ...).

State (moments, step count) lives in Parameters named ``optimizer.<slot>.<param name>`` so it is saved
in and restored from training checkpoints.
"""
import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mszoo.constants import OPTIMIZERS

_adamw_update = ops.MultitypeFuncGraph("adamw_update")
_adam_update = ops.MultitypeFuncGraph("adam_update")
_sgd_update = ops.MultitypeFuncGraph("sgd_update")
_lamb_update = ops.MultitypeFuncGraph("lamb_update")


def matches_no_decay(name, names):
    """True if ``name`` is listed in ``names`` exactly or lies under one of them (``prefix.``)."""
    if name in names:
        return True
    return any(name.startswith(n if n.endswith(".") else n + ".") for n in names)


def param_groups_weight_decay(params, weight_decay, no_weight_decay=()):
    """Per-parameter weight decay values (timm's rule): 0 for 1-D, ``.bias`` and listed names."""
    names = set(no_weight_decay or ())
    out = []
    for p in params:
        skip = len(p.shape) <= 1 or p.name.endswith(".bias") or matches_no_decay(p.name, names)
        out.append(0.0 if skip else float(weight_decay))
    return out


def _f32(x):
    return ms.Tensor(np.float32(x))


# ------------------------------------------------------------------------------------------- updates
# Each update function returns its Parameter after the in-place assignments, so HyperMap keeps them.

_fused_adamw = ops.AdamWeightDecay()


@_adamw_update.register("Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Bool", "Tensor", "Tensor",
                        "Tensor", "Tensor")
def _adamw_one(lr_t, beta1, beta2, eps_t, decay_t, zero, decays, param, m, v, grad):
    """One fused ``AdamWeightDecay`` kernel per parameter (instead of ~12 elementwise kernels).

    The kernel has no bias correction: ``p -= lr * (m / (sqrt(v) + eps) + decay * p)``. With
    ``lr_t = lr * sqrt(bc2) / bc1``, ``eps_t = eps * sqrt(bc2)`` and ``decay_t = wd * bc1 / sqrt(bc2)``
    it computes exactly torch's AdamW step ``p -= lr * wd * p + lr / bc1 * m / (sqrt(v / bc2) + eps)``.
    """
    return _fused_adamw(param, m, v, lr_t, beta1, beta2, eps_t, decay_t if decays else zero,
                        grad.astype(ms.float32))


@_adam_update.register("Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor",
                       "Tensor", "Tensor", "Tensor")
def _adam_one(lr, beta1, beta2, eps, bc1, bc2_sqrt, param, m, v, grad, wd):
    grad = grad.astype(ms.float32) + wd * param  # L2 penalty added to the gradient (torch.optim.Adam)
    new_m = beta1 * m + (1.0 - beta1) * grad
    new_v = beta2 * v + (1.0 - beta2) * grad * grad
    denom = ops.sqrt(new_v) / bc2_sqrt + eps
    new_p = param - (lr / bc1) * new_m / denom
    ops.assign(m, new_m)
    ops.assign(v, new_v)
    return ops.assign(param, new_p)


@_sgd_update.register("Tensor", "Tensor", "Bool", "Tensor", "Tensor", "Tensor", "Tensor")
def _sgd_one(lr, momentum, nesterov, param, buf, grad, wd):
    grad = grad.astype(ms.float32) + wd * param
    new_buf = momentum * buf + grad
    step = grad + momentum * new_buf if nesterov else new_buf
    ops.assign(buf, new_buf)
    return ops.assign(param, param - lr * step)


@_lamb_update.register("Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor",
                       "Tensor", "Tensor", "Tensor")
def _lamb_one(lr, beta1, beta2, eps, bc1, bc2, param, m, v, grad, wd):
    grad = grad.astype(ms.float32)
    new_m = beta1 * m + (1.0 - beta1) * grad
    new_v = beta2 * v + (1.0 - beta2) * grad * grad
    update = (new_m / bc1) / (ops.sqrt(new_v / bc2) + eps) + wd * param
    # Trust ratio ||w|| / ||update|| (1 where either norm is 0), only for decayed parameters (timm Lamb).
    w_norm = ops.sqrt(ops.reduce_sum(param * param))
    u_norm = ops.sqrt(ops.reduce_sum(update * update))
    one = ops.ones_like(w_norm)
    ratio = ops.select(w_norm > 0.0, ops.select(u_norm > 0.0, w_norm / ops.maximum(u_norm, 1e-30), one), one)
    ratio = ops.select(wd > 0.0, ratio, one)
    ops.assign(m, new_m)
    ops.assign(v, new_v)
    return ops.assign(param, param - lr * ratio * update)


class Optimizer(nn.Cell):
    """Base: parameters, per-parameter weight decay and a step counter (applied updates)."""

    def __init__(self, params, weight_decay=0.0, no_weight_decay=()):
        super().__init__(auto_prefix=False)
        params = [p for p in params if p.requires_grad]
        self.parameters = ms.ParameterTuple(params)
        self.weight_decays = param_groups_weight_decay(params, weight_decay, no_weight_decay)
        self.wd = tuple(_f32(w) for w in self.weight_decays)
        self.step = ms.Parameter(ms.Tensor(0, ms.int32), name="optimizer.step", requires_grad=False)
        self.hyper_map = ops.HyperMap()

    def _slots(self, slot):
        return self.parameters.clone(prefix=f"optimizer.{slot}", init="zeros")

    def state_parameters(self):
        """The optimizer's own Parameters (moments and step), for checkpoints."""
        return [p for p in self.get_parameters() if p.name.startswith("optimizer.")]

    def _next_step(self):
        step = self.step + 1
        ops.assign(self.step, step)
        return step.astype(ms.float32)


class AdamW(Optimizer):
    """AdamW with decoupled weight decay and bias correction (``torch.optim.AdamW`` / timm ``adamw``)."""

    def __init__(self, params, weight_decay=0.05, no_weight_decay=(), betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, weight_decay, no_weight_decay)
        self.beta1 = _f32(betas[0])
        self.beta2 = _f32(betas[1])
        self.eps = _f32(eps)
        self.weight_decay = _f32(weight_decay)
        self.zero = _f32(0.0)
        self.decays = tuple(w > 0.0 for w in self.weight_decays)  # compile-time flags, one per parameter
        self.exp_avg = self._slots("exp_avg")
        self.exp_avg_sq = self._slots("exp_avg_sq")

    def _bias_corrections(self):
        step = self._next_step()
        return 1.0 - ops.pow(self.beta1, step), 1.0 - ops.pow(self.beta2, step)

    def construct(self, grads, lr):
        bc1, bc2 = self._bias_corrections()
        bc2_sqrt = ops.sqrt(bc2)
        update = ops.Partial()(_adamw_update, lr * bc2_sqrt / bc1, self.beta1, self.beta2, self.eps * bc2_sqrt,
                               self.weight_decay * bc1 / bc2_sqrt, self.zero)
        return self.hyper_map(update, self.decays, self.parameters, self.exp_avg, self.exp_avg_sq, grads)


class Adam(AdamW):
    """Adam with L2 weight decay added to the gradient (``torch.optim.Adam``)."""

    def construct(self, grads, lr):
        bc1, bc2 = self._bias_corrections()
        update = ops.Partial()(_adam_update, lr, self.beta1, self.beta2, self.eps, bc1, ops.sqrt(bc2))
        return self.hyper_map(update, self.parameters, self.exp_avg, self.exp_avg_sq, grads, self.wd)


class SGD(Optimizer):
    """SGD with momentum (dampening 0) and optional Nesterov, L2 weight decay (``torch.optim.SGD``)."""

    def __init__(self, params, weight_decay=0.0, no_weight_decay=(), momentum=0.9, nesterov=False):
        super().__init__(params, weight_decay, no_weight_decay)
        self.momentum = _f32(momentum)
        self.nesterov = bool(nesterov)
        self.momentum_buffer = self._slots("momentum_buffer")

    def construct(self, grads, lr):
        self._next_step()
        update = ops.Partial()(_sgd_update, lr, self.momentum, self.nesterov)
        return self.hyper_map(update, self.parameters, self.momentum_buffer, grads, self.wd)


class Lamb(AdamW):
    """LAMB (timm ``Lamb`` without its internal gradient clipping; clip with ``clip_grad_norm``)."""

    def __init__(self, params, weight_decay=0.05, no_weight_decay=(), betas=(0.9, 0.999), eps=1e-6):
        super().__init__(params, weight_decay, no_weight_decay, betas, eps)

    def construct(self, grads, lr):
        bc1, bc2 = self._bias_corrections()
        update = ops.Partial()(_lamb_update, lr, self.beta1, self.beta2, self.eps, bc1, bc2)
        return self.hyper_map(update, self.parameters, self.exp_avg, self.exp_avg_sq, grads, self.wd)


def create_optimizer(cfg, params, no_weight_decay=()):
    """The optimizer named by ``cfg.optimizer`` over ``params`` (trainable parameters of the model)."""
    name = cfg.optimizer.lower()
    if name == "adamw":
        return AdamW(params, cfg.weight_decay, no_weight_decay, tuple(cfg.beta), cfg.eps)
    if name == "adam":
        return Adam(params, cfg.weight_decay, no_weight_decay, tuple(cfg.beta), cfg.eps)
    if name in ("momentum", "sgd"):
        return SGD(params, cfg.weight_decay, no_weight_decay, cfg.momentum, cfg.nesterov)
    if name == "lamb":
        return Lamb(params, cfg.weight_decay, no_weight_decay, tuple(cfg.beta), cfg.eps)
    raise ValueError(f"optimizer: unknown {cfg.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
