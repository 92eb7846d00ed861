"""Exponential moving average of the model weights (timm ``ModelEmaV2`` semantics).

After every applied optimizer update: ``ema = decay * ema + (1 - decay) * weight`` for every model
parameter (trainable or not). The EMA copies are Parameters named ``ema.<param name>`` so they are
saved in training checkpoints; validation copies them into an evaluation model (``copy_to``).
"""
import mindspore as ms
import numpy as np
from mindspore import nn, ops

_ema_update = ops.MultitypeFuncGraph("ema_update")


@_ema_update.register("Tensor", "Tensor", "Tensor")
def _ema_one(decay, ema, weight):
    new = decay * ema + (1.0 - decay) * weight.astype(ema.dtype)
    return ops.assign(ema, new)


class EMA(nn.Cell):
    """EMA of ``params``; ``construct()`` performs one update (called inside the compiled train step)."""

    PREFIX = "ema"

    def __init__(self, params, decay=0.9999):
        super().__init__(auto_prefix=False)
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"ema_decay must be in [0, 1], got {decay}")
        self.decay_value = float(decay)
        self.decay = ms.Tensor(np.float32(decay))
        self.weights = ms.ParameterTuple(list(params))
        self.ema_weights = ms.ParameterTuple([
            ms.Parameter(ms.Tensor(p.asnumpy().astype(np.float32)), name=f"{self.PREFIX}.{p.name}",
                         requires_grad=False)
            for p in self.weights])
        self.hyper_map = ops.HyperMap()

    def construct(self):
        return self.hyper_map(ops.Partial()(_ema_update, self.decay), self.ema_weights, self.weights)

    def state_parameters(self):
        return list(self.ema_weights)

    def state_dict(self):
        """``{model param name: numpy array}`` of the EMA weights."""
        n = len(self.PREFIX) + 1
        return {p.name[n:]: p.asnumpy() for p in self.ema_weights}

    def copy_to(self, model):
        """Write the EMA weights into ``model`` (a network with the same parameter names)."""
        values = self.state_dict()
        for p in model.get_parameters():
            if p.name not in values:
                raise KeyError(f"EMA has no weight for model parameter {p.name}")
            p.set_data(ms.Tensor(values[p.name].astype(ms.dtype_to_nptype(p.dtype))))
