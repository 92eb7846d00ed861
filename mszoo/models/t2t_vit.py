"""T2T-ViT (Tokens-to-Token Vision Transformer) in MindSpore.

`Tokens-to-Token ViT: Training Vision Transformers from Scratch on ImageNet` (Yuan et al., ICCV 2021,
https://arxiv.org/abs/2101.11986); official code: https://github.com/yitu-opensource/T2T-ViT.

The tokens-to-token (T2T) module replaces ViT's patch embedding. A "soft split" (overlapping 7x7
stride-4 windows; ``layers.UnfoldRows``, exact im2col without nn.Unfold/Im2Col) turns the image into
tokens; twice, a small token transformer re-structures them, they are folded back into a map and
soft-split again (3x3 stride-2 windows); a linear projection makes the final 1/16-resolution tokens.
A class token and a fixed (non-trainable) sinusoid position table are added and a plain ViT backbone
follows. The table has one row per token, so ``img_size`` (int or (H, W), any size) fixes the number
of tokens the model accepts; the token grid follows the unfold arithmetic (the official
``(img_size // 16) ** 2`` agrees for multiples of 16 only).

* ``t2t_vit_7 ... t2t_vit_24`` use ``TokenPerformer`` in the T2T module: linear attention with
  positive random features ``exp(w x - |x|^2 / 2)``; the random projection ``w`` is drawn once at
  construction and never trained, but it is a (non-trainable) parameter, so it is saved in and loaded
  from checkpoints and counted in the parameter count, as in the official code.
* ``t2t_vit_t_14|19|24`` use ``TokenTransformer`` (single-head softmax attention).

Behaviour follows the official code, including its quirks: the performer's two dropouts are fixed at
0.1 whatever ``drop_rate`` is; the token transformer scales attention by the *input* width
(``(C * k * k) ** -0.5``, i.e. 147 and 576), not by its 64-wide heads; the attention in the T2T layers
uses ``v`` as the skip connection. ``qk_scale`` defaults to ``head_dim ** -0.5``: the official
variant functions set ``qk_scale = embed_dim ** -0.5`` only on their ``pretrained=True`` branch,
which never loads weights (empty URL); the released checkpoints were trained and are evaluated
(``main.py``, README usage) with ``pretrained=False``, i.e. with ``head_dim ** -0.5``. Pass
``qk_scale=...`` to ``create_model`` to change it.

Parameter names follow the official ``models/t2t_vit.py``; the one rename is the performer's MLP
(``mlp.0`` / ``mlp.2`` of an ``nn.Sequential`` officially, ``mlp.fc1`` / ``mlp.fc2`` here, the shared
``Mlp``), handled by :func:`checkpoint_filter_fn`.
"""
import math
from functools import partial

import mindspore as ms
import numpy as np
from mindspore import nn, ops
from mindspore.common.initializer import Orthogonal, initializer

from mszoo.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .builder import build_model_with_cfg
from .layers import (
    GELU,
    Attention,
    ClassifierMixin,
    DropPath,
    HeadsToTokens,
    LayerNorm,
    Linear,
    Mlp,
    ScaledDotProduct,
    SplitHeads,
    TokenMaps,
    TokensToMap,
    UnfoldRows,
    check_output_fmt,
    checkpoint_blocks,
    classifier_head,
    drop_path_rates,
    feature_take_indices,
    init_weights_vit,
    make_dropout,
    prune_block_stack,
    to_2tuple,
    trunc_normal_param,
    unfold_output_size,
)
from .registry import make_cfg, register_model

__all__ = ["T2TViT", "T2TModule", "TokenPerformer", "TokenTransformer", "TokenAttention", "Block",
           "sinusoid_encoding", "checkpoint_filter_fn"]

# Soft split stages of the T2T module: (kernel, stride, padding), as the official code.
SOFT_SPLITS = ((7, 4, 2), (3, 2, 1), (3, 2, 1))
T2T_REDUCTION = 16  # the product of the soft splits' strides: input pixels per token along each axis


def sinusoid_encoding(n_position, dim):
    """``(1, n_position, dim)`` float32 sinusoid table (sin on even, cos on odd channels), as official."""
    position = np.arange(n_position, dtype=np.float64)[:, None]
    angle = position / np.power(10000.0, 2.0 * (np.arange(dim) // 2) / dim)
    table = np.empty_like(angle)
    table[:, 0::2] = np.sin(angle[:, 0::2])
    table[:, 1::2] = np.cos(angle[:, 1::2])
    return table[None].astype(np.float32)


def t2t_grid_size(img_size):
    """Token grid ``(H', W')`` after the three soft splits for an input of ``img_size``."""
    size = to_2tuple(img_size)
    for kernel, stride, padding in SOFT_SPLITS:
        size = unfold_output_size(size, kernel, stride, padding)
    return size


class TokenPerformer(nn.Cell):
    """Performer layer of the T2T module (single head, ``dim`` in, ``in_dim`` out).

    Attention is ``phi(q) (phi(k)^T v) / (phi(q) sum_t phi(k_t) + 1e-8)`` with positive random features
    ``phi(x) = exp(w x - |x|^2 / 2) / sqrt(m)``; ``v`` is the skip connection of the attention part.
    """

    def __init__(self, dim, in_dim, kernel_ratio=0.5, proj_drop=0.1, mlp_drop=0.1, act_layer=GELU):
        super().__init__()
        self.emb = in_dim
        self.kqv = Linear(dim, 3 * in_dim)
        self.dp = make_dropout(proj_drop)
        self.proj = Linear(in_dim, in_dim)
        self.norm1 = LayerNorm(dim)
        self.norm2 = LayerNorm(in_dim)
        self.epsilon = 1e-8
        self.mlp = Mlp(in_dim, in_dim, in_dim, act_layer=act_layer, drop=0.0)
        self.mlp_drop = make_dropout(mlp_drop)
        self.m = int(in_dim * kernel_ratio)
        self.sqrt_m = math.sqrt(self.m)
        # Random features: orthogonal rows scaled by sqrt(m); fixed, but kept in checkpoints.
        self.w = ms.Parameter(initializer(Orthogonal(gain=self.sqrt_m), (self.m, in_dim), ms.float32), name="w",
                              requires_grad=False)

    def prm_exp(self, x):
        xd = (x * x).sum(axis=-1, keepdims=True) / 2
        wtx = ops.matmul(x, self.w.astype(x.dtype).T)
        return ops.exp(wtx - xd) / self.sqrt_m

    def construct(self, x):
        x = self.norm1(x)
        kqv = self.kqv(x)
        e = self.emb
        k, q, v = kqv[:, :, :e], kqv[:, :, e:2 * e], kqv[:, :, 2 * e:]
        kp, qp = self.prm_exp(k), self.prm_exp(q)  # (B, T, m)
        d = ops.matmul(qp, kp.sum(axis=1).expand_dims(-1))  # (B, T, 1)
        kptv = ops.matmul(v.swapaxes(1, 2), kp)  # (B, emb, m)
        y = ops.matmul(qp, kptv.swapaxes(1, 2)) / (d + self.epsilon)  # (B, T, emb)
        y = v + self.dp(self.proj(y))
        return y + self.mlp_drop(self.mlp(self.norm2(y)))


class TokenAttention(nn.Cell):
    """Attention of the token transformer: ``dim`` in, ``in_dim`` out, ``v`` as the skip connection.

    The scale is ``(dim // num_heads) ** -0.5`` (the input width, as official), unless ``qk_scale``.
    """

    def __init__(self, dim, in_dim, num_heads=1, qkv_bias=False, qk_scale=None, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        if in_dim % num_heads != 0:
            raise ValueError(f"in_dim {in_dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.in_dim = in_dim
        self.head_dim = in_dim // num_heads
        self.qkv = Linear(dim, in_dim * 3, has_bias=qkv_bias)
        self.attend = ScaledDotProduct(qk_scale or (dim // num_heads) ** -0.5, attn_drop)
        self.proj = Linear(in_dim, in_dim)
        self.proj_drop = make_dropout(proj_drop)
        self.split_heads = SplitHeads(3, num_heads)
        self.merge_heads = HeadsToTokens()

    def construct(self, x):
        q, k, v = self.split_heads(self.qkv(x))
        x = self.proj_drop(self.proj(self.merge_heads(self.attend(q, k, v))))
        return self.merge_heads(v) + x


class TokenTransformer(nn.Cell):
    """Transformer layer of the T2T module (``t2t_vit_t_*``): ``dim`` in, ``in_dim`` out."""

    def __init__(self, dim, in_dim, num_heads=1, mlp_ratio=1.0, qkv_bias=False, qk_scale=None, drop=0.0,
                 attn_drop=0.0, drop_path=0.0, act_layer=GELU):
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = TokenAttention(dim, in_dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale,
                                   attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = LayerNorm(in_dim)
        self.mlp = Mlp(in_dim, int(in_dim * mlp_ratio), in_dim, act_layer=act_layer, drop=drop)

    def construct(self, x):
        x = self.attn(self.norm1(x))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class T2TModule(nn.Cell):
    """Tokens-to-token: soft split -> token layer -> fold + soft split (twice) -> soft split -> project.

    Returns ``(B, H' * W', embed_dim)`` tokens; the grid sizes are read from the input.
    """

    def __init__(self, img_size=224, tokens_type="performer", in_chans=3, embed_dim=768, token_dim=64):
        super().__init__()
        (k0, s0, p0), (k1, s1, p1), (k2, s2, p2) = SOFT_SPLITS
        self.soft_split0 = UnfoldRows(k0, stride=s0, padding=p0)
        self.soft_split1 = UnfoldRows(k1, stride=s1, padding=p1)
        self.soft_split2 = UnfoldRows(k2, stride=s2, padding=p2)
        if tokens_type == "performer":
            self.attention1 = TokenPerformer(in_chans * k0 * k0, token_dim, kernel_ratio=0.5)
            self.attention2 = TokenPerformer(token_dim * k1 * k1, token_dim, kernel_ratio=0.5)
        elif tokens_type == "transformer":
            self.attention1 = TokenTransformer(in_chans * k0 * k0, token_dim, num_heads=1, mlp_ratio=1.0)
            self.attention2 = TokenTransformer(token_dim * k1 * k1, token_dim, num_heads=1, mlp_ratio=1.0)
        else:
            raise ValueError(f"tokens_type must be 'performer' or 'transformer', got {tokens_type!r}")
        self.project = Linear(token_dim * k2 * k2, embed_dim)
        self.grid_size = t2t_grid_size(img_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.to_map = TokensToMap()

    def construct(self, x):
        size = self.soft_split0.grid(x.shape[2:])
        x = self.attention1(self.soft_split0(x))
        x = self.attention2(self.soft_split1(self.to_map(x, size)))
        size = self.soft_split1.grid(size)
        return self.project(self.soft_split2(self.to_map(x, size)))


class Block(nn.Cell):
    """Pre-norm ViT block: x + DropPath(Attention(LN(x))), x + DropPath(Mlp(LN(x)))."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=False, qk_scale=None, proj_drop=0.0, attn_drop=0.0,
                 drop_path=0.0, act_layer=GELU):
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop,
                              proj_drop=proj_drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=proj_drop)

    def construct(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class T2TViT(ClassifierMixin, nn.Cell):
    """T2T-ViT: T2T module -> [cls] + tokens + sinusoid table -> ViT blocks -> LayerNorm -> head on [cls].

    Args:
        img_size: input size (int or (H, W)); it fixes the number of tokens and so the position table.
        tokens_type: ``"performer"`` or ``"transformer"`` (the T2T module's layers).
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias, qk_scale: the ViT backbone.
        token_dim: width of the T2T module's tokens (64).
        drop_rate: dropout after the position table and inside the blocks; attn_drop_rate: on attention
        weights; drop_path_rate: stochastic depth, linearly increasing over the blocks.
    """

    GLOBAL_POOLS = ("token", "")
    POOL_NOTE = "T2T-ViT classifies from the class token: "

    def __init__(self, img_size=224, tokens_type="performer", in_chans=3, num_classes=1000, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4.0, qkv_bias=False, qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0,
                 drop_path_rate=0.0, token_dim=64, global_pool="token"):
        super().__init__()
        self.check_pool(global_pool)
        self.num_classes = num_classes
        self.grad_checkpointing = False
        self.global_pool = global_pool
        self.num_features = self.embed_dim = embed_dim
        self.img_size = to_2tuple(img_size)
        self.tokens_type = tokens_type

        self.tokens_to_token = T2TModule(img_size=img_size, tokens_type=tokens_type, in_chans=in_chans,
                                         embed_dim=embed_dim, token_dim=token_dim)
        self.num_patches = self.tokens_to_token.num_patches
        self.cls_token = trunc_normal_param((1, 1, embed_dim), std=0.02, name="cls_token")
        self.pos_embed = ms.Parameter(ms.Tensor(sinusoid_encoding(self.num_patches + 1, embed_dim)), name="pos_embed",
                                      requires_grad=False)
        self.pos_drop = make_dropout(drop_rate)

        dpr = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.CellList([
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale,
                  proj_drop=drop_rate, attn_drop=attn_drop_rate, drop_path=dpr[i])
            for i in range(depth)])
        self.depth = depth
        # one tap per ViT block: its patch tokens as a map (as timm's ViTs); the T2T module's strides 4 * 2 * 2
        self.feature_info = [dict(module=f"blocks.{i}", num_chs=embed_dim, reduction=T2T_REDUCTION)
                             for i in range(depth)]
        self.num_prefix_tokens = 1
        self.token_maps = TokenMaps(self.num_prefix_tokens)
        self.norm = LayerNorm(embed_dim)
        self.head = classifier_head(embed_dim, num_classes, init=False)

        init_weights_vit(self, std=0.02)

    def set_grad_checkpointing(self, enable=True):
        """Recompute each ViT block in the backward pass instead of keeping its activations (timm's API;
        ``layers/recompute.py``): less memory, one more forward pass of the blocks per step."""
        self.grad_checkpointing = checkpoint_blocks(self.blocks, enable)

    def no_weight_decay(self):
        """The class token (as official); ``pos_embed`` and the performers' ``w`` are not trained at all."""
        return {"cls_token"}

    def _embed(self, x):
        """Image -> the first block's input: class token + T2T tokens + the sinusoid table."""
        x = self.tokens_to_token(x)
        if x.shape[1] != self.num_patches:
            raise ValueError(f"T2T-ViT: the input gives {x.shape[1]} tokens, but the model was built for img_size="
                             f"{self.img_size} ({self.num_patches} tokens); build it with the input's img_size")
        b = x.shape[0]
        cls = ops.tile(self.cls_token.astype(x.dtype), (b, 1, 1))
        x = ops.concat((cls, x), axis=1)
        return self.pos_drop(x + self.pos_embed.astype(x.dtype))

    def forward_features(self, x):
        x = self._embed(x)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_intermediates(self, x, indices=None, return_prefix_tokens=False, norm=False, stop_early=False,
                              output_fmt="NCHW", intermediates_only=False):
        """timm's ``forward_intermediates`` for a ViT: the patch tokens after the blocks ``indices`` (None: all, an
        int n: the last n, a sequence: those, negative from the end), without the class token, as ``(B, C, H, W)``
        maps on the T2T token grid of the input (``"NCHW"``) or ``(B, H * W, C)`` (``"NLC"``); ``norm`` applies the
        final norm to each first; ``return_prefix_tokens`` pairs each with its class token. Unless
        ``intermediates_only``, the normed final tokens come first, as ``forward_features`` gives them."""
        check_output_fmt(output_fmt)
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        grid = t2t_grid_size((x.shape[2], x.shape[3]))
        x = self._embed(x)
        run = max_index + 1 if stop_early or intermediates_only else len(self.blocks)
        intermediates = []
        for i in range(run):
            x = self.blocks[i](x)
            if i in take_indices:
                intermediates.append(self.norm(x) if norm else x)
        intermediates = self.token_maps(intermediates, grid, output_fmt, return_prefix_tokens)
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates

    def prune_intermediate_layers(self, indices=1, prune_norm=False, prune_head=True):
        return prune_block_stack(self, indices, prune_norm, prune_head)

    def forward_head(self, x, pre_logits=False):
        if self.global_pool == "token":
            x = x[:, 0]
        if pre_logits:
            return x
        return self.head(x)

    def construct(self, x):
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state_dict, model):
    """Map an official T2T-ViT state dict (``{name: np.ndarray}``) onto ``model``.

    * The performer MLP ``tokens_to_token.attention{1,2}.mlp.0|2.*`` becomes ``mlp.fc1|fc2.*``.
    * ``pos_embed`` is a fixed sinusoid table: kept when its shape fits the model, otherwise (another
      ``img_size``, or absent) rebuilt for the model's number of tokens, which is exactly the table an
      official model built at that size holds.
    * The performers' random features ``w`` are taken from the checkpoint (they cannot be rebuilt).
    * ``head.*`` is dropped when the model has no classifier (``num_classes=0``); a head of another shape
      is left to the converter (``--num_classes`` re-heads).
    """
    own = {p.name: p for p in model.get_parameters()}
    out = {}
    for key, value in state_dict.items():
        if key.startswith("tokens_to_token.attention") and ".mlp." in key:
            key = key.replace(".mlp.0.", ".mlp.fc1.").replace(".mlp.2.", ".mlp.fc2.")
        if key.startswith("head.") and key not in own:
            continue
        if key.endswith("num_batches_tracked"):
            continue
        out[key] = value
    if "pos_embed" in own:
        target = tuple(own["pos_embed"].shape)
        table = out.get("pos_embed")
        if table is None or tuple(np.shape(table)) != target:
            out["pos_embed"] = sinusoid_encoding(target[1], target[2])
    return out


def _create_t2t_vit(variant, pretrained=None, model_args=None, **kwargs):
    # features_only: the last three blocks' maps by default (timm's ViTs: out_indices=3)
    return build_model_with_cfg(T2TViT, variant, pretrained, model_args, feature_cfg=dict(out_indices=3), **kwargs)


# The official release files (T2T-ViT README); no checksums are published for them.
RELEASES = "https://github.com/yitu-opensource/T2T-ViT/releases/download/main/"


def _cfg(**kwargs):
    return make_cfg(input_size=(3, 224, 224), crop_pct=0.9, interpolation="bicubic", mean=IMAGENET_DEFAULT_MEAN,
                    std=IMAGENET_DEFAULT_STD, num_classes=1000, pool_size=None, first_conv="tokens_to_token.project",
                    classifier="head", license="bsd-3-clause-clear", **kwargs)


# Every variant is registered with the family's checkpoint filter: the converter and create_model(pretrained=...)
# find it through the registry (mszoo/models/registry.py: checkpoint_filter).
register_variant = partial(register_model, checkpoint_filter=checkpoint_filter_fn)


@register_variant(default_cfg=_cfg(url=RELEASES + "71.7_T2T_ViT_7.pth.tar"))
def t2t_vit_7(pretrained=None, **kwargs):
    model_args = dict(tokens_type="performer", embed_dim=256, depth=7, num_heads=4, mlp_ratio=2.0)
    return _create_t2t_vit("t2t_vit_7", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(url=RELEASES + "75.2_T2T_ViT_10.pth.tar"))
def t2t_vit_10(pretrained=None, **kwargs):
    model_args = dict(tokens_type="performer", embed_dim=256, depth=10, num_heads=4, mlp_ratio=2.0)
    return _create_t2t_vit("t2t_vit_10", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(url=RELEASES + "76.5_T2T_ViT_12.pth.tar"))
def t2t_vit_12(pretrained=None, **kwargs):
    model_args = dict(tokens_type="performer", embed_dim=256, depth=12, num_heads=4, mlp_ratio=2.0)
    return _create_t2t_vit("t2t_vit_12", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(url=RELEASES + "81.5_T2T_ViT_14.pth.tar"))
def t2t_vit_14(pretrained=None, **kwargs):
    model_args = dict(tokens_type="performer", embed_dim=384, depth=14, num_heads=6, mlp_ratio=3.0)
    return _create_t2t_vit("t2t_vit_14", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(url=RELEASES + "81.9_T2T_ViT_19.pth.tar"))
def t2t_vit_19(pretrained=None, **kwargs):
    model_args = dict(tokens_type="performer", embed_dim=448, depth=19, num_heads=7, mlp_ratio=3.0)
    return _create_t2t_vit("t2t_vit_19", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(url=RELEASES + "82.3_T2T_ViT_24.pth.tar"))
def t2t_vit_24(pretrained=None, **kwargs):
    model_args = dict(tokens_type="performer", embed_dim=512, depth=24, num_heads=8, mlp_ratio=3.0)
    return _create_t2t_vit("t2t_vit_24", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(url=RELEASES + "81.7_T2T_ViTt_14.pth.tar"))
def t2t_vit_t_14(pretrained=None, **kwargs):
    model_args = dict(tokens_type="transformer", embed_dim=384, depth=14, num_heads=6, mlp_ratio=3.0)
    return _create_t2t_vit("t2t_vit_t_14", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(url=RELEASES + "82.4_T2T_ViTt_19.pth.tar"))
def t2t_vit_t_19(pretrained=None, **kwargs):
    model_args = dict(tokens_type="transformer", embed_dim=448, depth=19, num_heads=7, mlp_ratio=3.0)
    return _create_t2t_vit("t2t_vit_t_19", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(url=RELEASES + "82.6_T2T_ViTt_24.pth.tar"))
def t2t_vit_t_24(pretrained=None, **kwargs):
    model_args = dict(tokens_type="transformer", embed_dim=512, depth=24, num_heads=8, mlp_ratio=3.0)
    return _create_t2t_vit("t2t_vit_t_24", pretrained, model_args, **kwargs)
