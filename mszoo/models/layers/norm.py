"""LayerNorm with timm's parameter names (``weight``/``bias``), so converted checkpoints map 1:1."""
import mindspore as ms
import numpy as np
from mindspore import ops

from .backend import FusedKernelUser


class LayerNorm(FusedKernelUser):
    """Layer normalisation over the last dimension.

    MindSpore's ``nn.LayerNorm`` names its parameters ``gamma``/``beta``; timm and PyTorch name them
    ``weight``/``bias``. Keeping PyTorch's names makes checkpoint conversion an identity for norms.
    """

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = ms.Parameter(ms.Tensor(np.ones(dim, np.float32)), name="weight")
        self.bias = ms.Parameter(ms.Tensor(np.zeros(dim, np.float32)), name="bias")
        self.norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps)
        self.fused_eps = ms.Tensor(np.array([eps], np.float32))

    def use_fused_ops(self, ops_by_kind):
        """The forward op of ``ops_by_kind["layer_norm"]`` (it carries its backward); see ``FusedKernelUser``."""
        self.fused = None if ops_by_kind is None else ops_by_kind["layer_norm"][0]

    def construct(self, x):
        if self.use_kernel(x) and self.weight.dtype == ms.float32:
            y, _, _ = self.fused(x, self.weight, self.bias, self.fused_eps)
            return y
        y, _, _ = self.norm(x, self.weight.astype(x.dtype), self.bias.astype(x.dtype))
        return y

    def extend_repr(self):
        return f"{self.dim}, eps={self.eps}"
