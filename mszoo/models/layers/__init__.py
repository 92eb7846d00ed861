"""Blocks shared by every model family (defined once here)."""
from .activations import GELU, GELUTanh, erf_exportable, set_exportable
from .attention import Attention, ScaledDotProduct
from .backend import AttnValues, Permute, QKScores, Softmax, SplitHeads
from .classifier import ClassifierMixin, classifier_head
from .drop import DropPath, drop_path_rates, make_dropout
from .features import (
                       FeatureGetterNet,
                       FeatureInfo,
                       TokenMaps,
                       check_output_fmt,
                       feature_take_indices,
                       prune_block_stack,
)
from .helpers import to_2tuple
from .layout import HeadsToTokens, MapToTokens, MapToWindows, TokensToHeads, TokensToMap, WindowsToMap
from .linear import Linear
from .mlp import Mlp
from .norm import LayerNorm
from .patch_conv import PatchConv
from .patch_embed import PatchEmbed
from .pos_conv import PosConv
from .pos_embed import resample_abs_pos_embed_np
from .recompute import checkpoint_blocks
from .unfold import Unfold, UnfoldConv, UnfoldRows, unfold_output_size
from .weight_init import init_weights_vit, trunc_normal_param

__all__ = ["GELU", "GELUTanh", "erf_exportable", "set_exportable", "Attention", "ScaledDotProduct", "ClassifierMixin",
           "classifier_head", "DropPath", "drop_path_rates", "make_dropout", "to_2tuple", "Linear", "Mlp", "LayerNorm",
           "PatchConv", "PatchEmbed", "Permute", "PosConv", "SplitHeads", "TokensToMap", "MapToTokens", "TokensToHeads",
           "HeadsToTokens", "MapToWindows", "WindowsToMap",
           "resample_abs_pos_embed_np", "init_weights_vit", "trunc_normal_param", "Unfold", "UnfoldConv", "UnfoldRows",
           "unfold_output_size",
           "checkpoint_blocks", "AttnValues", "QKScores", "Softmax", "FeatureGetterNet", "FeatureInfo", "TokenMaps",
           "check_output_fmt", "feature_take_indices", "prune_block_stack"]
