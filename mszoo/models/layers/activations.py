"""Activations. GELU is the exact (erf) one, with an export-friendly formulation.

MindSpore's ONNX exporter has no ``Erf``. ``GELU.exportable = True`` switches the cell to an erf built
from Abs/Exp/Div/Mul/Select (Abramowitz & Stegun 7.1.26, max abs error 1.5e-7), which every exporter
supports. Training and evaluation use the exact kernel; ``set_exportable`` flips the whole model.
``GELUTanh`` is the tanh approximation, for the models trained with it (the model-zoo readmes' MindSpore code).
"""
from mindspore import nn, ops

from .backend import FusedKernelUser

# Abramowitz & Stegun 7.1.26 coefficients for erf(x), x >= 0.
_P = 0.3275911
_A1, _A2, _A3, _A4, _A5 = 0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429
_INV_SQRT2 = 0.7071067811865476
_SQRT2 = 1.4142135623730951
_INV_SQRT_2PI = 0.3989422804014327
_SQRT_2_OVER_PI = 0.7978845608028654


def erf_exportable(x):
    """erf(x) from elementary ops only (|error| < 1.5e-7)."""
    ax = ops.abs(x)
    # tensor / tensor (ONNX Div): a python scalar over a tensor becomes Reciprocal, which the exporter lacks
    t = ops.div(ops.ones_like(ax), 1.0 + _P * ax)
    poly = ((((_A5 * t + _A4) * t + _A3) * t + _A2) * t + _A1) * t
    y = 1.0 - poly * ops.exp(-ax * ax)
    return ops.select(x >= 0, y, -y)


class GELU(FusedKernelUser):
    """Exact GELU: ``x * 0.5 * (1 + erf(x / sqrt(2)))``.

    Written out with a hand-written gradient, ``dy * (Phi(x) + x * phi(x))``: MindSpore's CPU ``GeLU``
    expands to a real-division forward and a gradient with several more full-size divisions, which made
    GELU ~45 % of a Twins training step. This form computes the same values with multiplications.
    """

    # constants as attributes: AMP O1 rewrites this cell's source into another module, where module
    # globals are not defined
    inv_sqrt2 = _INV_SQRT2
    sqrt2 = _SQRT2
    inv_sqrt_2pi = _INV_SQRT_2PI

    def __init__(self):
        super().__init__()
        self.exportable = False
        self.fused_grad = None

    def use_fused_ops(self, ops_by_kind):
        """The (forward, backward) ops of ``ops_by_kind["gelu"]``; see ``FusedKernelUser``."""
        self.fused, self.fused_grad = (None, None) if ops_by_kind is None else ops_by_kind["gelu"]

    def construct(self, x):
        if self.use_kernel(x):
            return self.fused(x)
        if self.exportable:
            # x / sqrt(2), not x * (1 / sqrt(2)): after the ONNX export's Erf is restored this is the
            # pattern onnxruntime fuses into its Gelu kernel.
            return x * 0.5 * (1.0 + erf_exportable(x / self.sqrt2))
        return x * (ops.erf(x * self.inv_sqrt2) * 0.5 + 0.5)

    def bprop(self, x, out, dout):
        if self.use_kernel(x):
            return (self.fused_grad(x, dout),)
        cdf = ops.erf(x * self.inv_sqrt2) * 0.5 + 0.5
        pdf = ops.exp(ops.square(x) * -0.5) * self.inv_sqrt_2pi
        return (dout * (cdf + x * pdf),)


class GELUTanh(nn.Cell):
    """GELU's tanh approximation, ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (timm's ``GELUTanh``).

    What MindSpore's ``nn.GELU()`` computes by default, so the activation of models trained with it (the
    MindSpore model zoo's code); the published weights use the exact ``GELU``. Written out with elementwise
    ops, so it exports everywhere and autodiff gives its gradient, as ``x * sigmoid(2 z)`` (the same function):
    MindSpore's CPU ``tanh`` is off by up to 1e-4, its sigmoid by float32 rounding.
    """

    two_sqrt_2_over_pi = 2.0 * _SQRT_2_OVER_PI

    def construct(self, x):
        return x * ops.sigmoid((x + x * x * x * 0.044715) * self.two_sqrt_2_over_pi)


def set_exportable(model, exportable=True):
    """Switch every cell that has an export-friendly formulation (``exportable`` attribute)."""
    for _, cell in model.cells_and_names():
        if hasattr(cell, "exportable"):
            cell.exportable = exportable
    return model
