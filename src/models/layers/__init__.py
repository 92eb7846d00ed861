"""Blocks shared by every model family (defined once here)."""
from .activations import GELU, erf_exportable, set_exportable
from .attention import Attention, unbind
from .drop import DropPath, make_dropout
from .helpers import to_2tuple
from .linear import Linear, classifier_head
from .memory import QKScores, Softmax
from .mlp import Mlp
from .norm import LayerNorm
from .patch_embed import PatchEmbed
from .recompute import checkpoint_blocks
from .unfold import Unfold, unfold_output_size
from .weight_init import init_weights_vit, trunc_normal_param, zeros_param

__all__ = ["GELU", "erf_exportable", "set_exportable", "Attention", "unbind", "DropPath", "make_dropout",
           "to_2tuple", "Linear", "classifier_head", "Mlp", "LayerNorm", "PatchEmbed", "init_weights_vit",
           "trunc_normal_param", "zeros_param", "Unfold", "unfold_output_size", "checkpoint_blocks",
           "QKScores", "Softmax"]
