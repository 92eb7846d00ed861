"""Transformer MLP block: Linear -> act -> drop -> Linear -> drop (timm ``Mlp``)."""
from mindspore import nn

from .activations import GELU
from .drop import make_dropout
from .linear import Linear


class Mlp(nn.Cell):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=GELU, drop=0.0, bias=True):
        """``bias``: both layers' bias, or a pair ``(fc1, fc2)`` (timm's ``Mlp``)."""
        super().__init__()
        bias = tuple(bias) if isinstance(bias, (tuple, list)) else (bias, bias)
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = Linear(in_features, hidden_features, has_bias=bias[0])
        self.act = act_layer()
        self.drop1 = make_dropout(drop)
        self.fc2 = Linear(hidden_features, out_features, has_bias=bias[1])
        self.drop2 = make_dropout(drop)

    def construct(self, x):
        x = self.drop1(self.act(self.fc1(x)))
        return self.drop2(self.fc2(x))
