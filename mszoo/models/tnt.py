"""Transformer in Transformer (TNT) in MindSpore.

Paper: `Transformer in Transformer` (Han et al., 2021) - https://arxiv.org/abs/2103.00112

Every patch of the image is split into "pixels" (sub-patches). An inner transformer mixes the pixel
embeddings inside each patch; their flattened result is projected and added to the patch embedding
that the outer transformer mixes across patches. Parameter names and variant hyper-parameters follow
timm's ``timm/models/tnt.py``, so timm checkpoints convert with :func:`checkpoint_filter_fn`.

Two layouts exist (``legacy`` flag):

* current (``tnt_s_patch16_224``, ``tnt_b_patch16_224``): the image is cut into patches first, then a
  7x7 stride-4 conv embeds the pixels of each patch; a block projects the pixels with
  LayerNorm(pixels * inner_dim) -> Linear (no bias) -> LayerNorm(embed_dim).
* legacy (``tnt_s_legacy_patch16_224``, the layout of the original weights): the conv runs over the
  whole image and its output is cut into patches; a block projects with LayerNorm(inner_dim) ->
  Linear (with bias).

``tnt_s_patch16_224_mindspore_seed`` is TNT-S as the MindSpore model zoo's TNT code (``research/cv/TNT``, the
TNT readme our users come from) builds it, for checkpoints trained with that code: the current layout without
biases on the pixel conv, the patch projection, the attention/MLP output layers and the head, with tanh GELU and
LayerNorm eps 1e-7. Its checkpoints are recognised by their names (``SEED_FORMAT``, mszoo/models/seeds.py) and
mapped by :func:`seed_checkpoint_filter_fn`.

Patch cutting is done with reshape + transpose (exactly what ``nn.Unfold`` computes when the stride
equals the kernel), which runs on every MindSpore backend and exports to ONNX without Im2Col.
"""
import math
from functools import partial

import numpy as np
from mindspore import nn, ops

from mszoo.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD

from .builder import build_model_with_cfg
from .layers import (
    GELU,
    ClassifierMixin,
    DropPath,
    GELUTanh,
    HeadsToTokens,
    LayerNorm,
    Linear,
    MapToTokens,
    Mlp,
    ScaledDotProduct,
    SplitHeads,
    TokenMaps,
    TokensToHeads,
    UnfoldConv,
    check_output_fmt,
    checkpoint_blocks,
    classifier_head,
    drop_path_rates,
    feature_take_indices,
    init_weights_vit,
    make_dropout,
    prune_block_stack,
    resample_abs_pos_embed_np,
    to_2tuple,
    trunc_normal_param,
)
from .registry import make_cfg, register_model
from .seeds import SeedFormat, join_layers, norm_names, register_seed_format

__all__ = ["TNT", "checkpoint_filter_fn", "seed_checkpoint_filter_fn"]



def unfold_patches(x, patch_h, patch_w):
    """``(B, C, H, W)`` -> ``(B * gh * gw, C, patch_h, patch_w)`` non-overlapping patches, row-major.

    Same values and order as ``nn.Unfold(kernel, stride=kernel)`` followed by transpose + reshape;
    rows/columns that do not fill a whole patch are dropped, as unfold does.
    """
    _, c, h, w = x.shape
    gh = h // patch_h
    gw = w // patch_w
    if gh * patch_h != h or gw * patch_w != w:
        x = x[:, :, :gh * patch_h, :gw * patch_w]
    x = x.reshape(-1, c, gh, patch_h, gw, patch_w).transpose(0, 2, 4, 1, 3, 5)
    return x.reshape(-1, c, patch_h, patch_w)


class Attention(nn.Cell):
    """Multi-head self-attention with a joint ``qk`` projection and a separate ``v`` (timm TNT)."""

    def __init__(self, dim, hidden_dim, num_heads=8, qkv_bias=False, attn_drop=0.0, proj_drop=0.0, proj_bias=True):
        super().__init__()
        if hidden_dim % num_heads != 0:
            raise ValueError(f"hidden_dim {hidden_dim} must be divisible by num_heads {num_heads}")
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.head_dim = hidden_dim // num_heads
        self.qk = Linear(dim, hidden_dim * 2, has_bias=qkv_bias)
        self.v = Linear(dim, dim, has_bias=qkv_bias)
        self.attend = ScaledDotProduct(self.head_dim ** -0.5, attn_drop, scale_queries=False)
        self.proj = Linear(dim, dim, has_bias=proj_bias)
        self.proj_drop = make_dropout(proj_drop)
        self.split_qk = SplitHeads(2, num_heads)
        self.to_heads = TokensToHeads(num_heads)
        self.merge_heads = HeadsToTokens()

    def construct(self, x):
        q, k = self.split_qk(self.qk(x))
        x = self.merge_heads(self.attend(q, k, self.to_heads(self.v(x))))
        return self.proj_drop(self.proj(x))


class Block(nn.Cell):
    """TNT block: inner (pixel) transformer, pixel -> patch projection, outer (patch) transformer."""

    def __init__(self, dim, dim_out, num_pixel, num_heads_in=4, num_heads_out=12, mlp_ratio=4.0,
                 qkv_bias=False, proj_drop=0.0, attn_drop=0.0, drop_path=0.0, act_layer=GELU,
                 norm_layer=LayerNorm, legacy=False, out_bias=True):
        super().__init__()
        # inner transformer over the pixels of each patch
        self.norm_in = norm_layer(dim)
        self.attn_in = Attention(dim, dim, num_heads=num_heads_in, qkv_bias=qkv_bias, attn_drop=attn_drop,
                                 proj_drop=proj_drop, proj_bias=out_bias)
        self.norm_mlp_in = norm_layer(dim)
        self.mlp_in = Mlp(dim, hidden_features=int(dim * 4), out_features=dim, act_layer=act_layer, drop=proj_drop,
                          bias=(True, out_bias))
        # pixels of a patch -> one patch-embedding update
        self.legacy = legacy
        if legacy:
            self.norm1_proj = norm_layer(dim)
            self.proj = Linear(dim * num_pixel, dim_out, has_bias=True)
            self.norm2_proj = None
        else:
            self.norm1_proj = norm_layer(dim * num_pixel)
            self.proj = Linear(dim * num_pixel, dim_out, has_bias=False)
            self.norm2_proj = norm_layer(dim_out)
        # outer transformer over the patches (+ class token)
        self.norm_out = norm_layer(dim_out)
        self.attn_out = Attention(dim_out, dim_out, num_heads=num_heads_out, qkv_bias=qkv_bias,
                                  attn_drop=attn_drop, proj_drop=proj_drop, proj_bias=out_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm_mlp = norm_layer(dim_out)
        self.mlp = Mlp(dim_out, hidden_features=int(dim_out * mlp_ratio), out_features=dim_out,
                       act_layer=act_layer, drop=proj_drop, bias=(True, out_bias))

    def construct(self, pixel_embed, patch_embed):
        pixel_embed = pixel_embed + self.drop_path(self.attn_in(self.norm_in(pixel_embed)))
        pixel_embed = pixel_embed + self.drop_path(self.mlp_in(self.norm_mlp_in(pixel_embed)))

        n = patch_embed.shape[1]
        if self.legacy:
            update = self.proj(self.norm1_proj(pixel_embed).reshape(-1, n - 1, self.proj.in_channels))
        else:
            update = self.norm2_proj(self.proj(self.norm1_proj(
                pixel_embed.reshape(-1, n - 1, self.proj.in_channels))))
        patch_embed = ops.cat((patch_embed[:, 0:1], patch_embed[:, 1:] + update), axis=1)
        patch_embed = patch_embed + self.drop_path(self.attn_out(self.norm_out(patch_embed)))
        patch_embed = patch_embed + self.drop_path(self.mlp(self.norm_mlp(patch_embed)))
        return pixel_embed, patch_embed


class PixelEmbed(nn.Cell):
    """Image -> pixel embeddings ``(B * num_patches, num_pixel, in_dim)``.

    ``img_size`` only fixes ``grid_size``/``num_patches`` (used to size ``patch_pos``); the grid of the
    actual input is read from its shape in ``construct``.
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, in_dim=48, stride=4, legacy=False, bias=True):
        super().__init__()
        img_size = to_2tuple(img_size)
        patch_size = to_2tuple(patch_size)
        self.img_size = img_size
        self.patch_size = patch_size
        self.grid_size = (img_size[0] // patch_size[0], img_size[1] // patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.in_dim = in_dim
        self.legacy = legacy
        self.new_patch_size = tuple(int(math.ceil(p / stride)) for p in patch_size)
        self.proj = UnfoldConv(in_chans, in_dim, kernel_size=7, stride=stride, padding=3, has_bias=bias)
        self.to_tokens = MapToTokens()

    def dynamic_feat_size(self, img_size):
        return img_size[0] // self.patch_size[0], img_size[1] // self.patch_size[1]

    def construct(self, x, pixel_pos):
        if self.legacy:
            # conv over the whole image, then cut its output into new_patch_size pieces
            x = unfold_patches(self.proj(x), self.new_patch_size[0], self.new_patch_size[1])
        else:
            # cut the image into patches, then conv each patch
            x = self.proj(unfold_patches(x, self.patch_size[0], self.patch_size[1]))
        x = x + pixel_pos
        return self.to_tokens(x)


class TNT(ClassifierMixin, nn.Cell):
    """Transformer in Transformer - https://arxiv.org/abs/2103.00112"""

    GLOBAL_POOLS = ("token", "avg", "")

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, global_pool="token",
                 embed_dim=768, inner_dim=48, depth=12, num_heads_inner=4, num_heads_outer=12, mlp_ratio=4.0,
                 qkv_bias=False, drop_rate=0.0, pos_drop_rate=0.0, proj_drop_rate=0.0, attn_drop_rate=0.0,
                 drop_path_rate=0.0, norm_layer=LayerNorm, act_layer=GELU, first_stride=4, legacy=False,
                 out_bias=True):
        """``out_bias=False``: no bias on the pixel conv, the patch projection, the attention and MLP output
        layers and the head (the MindSpore model zoo's TNT code); the published model has them."""
        super().__init__()
        self.check_pool(global_pool)
        self.num_classes = num_classes
        self.grad_checkpointing = False
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dim
        self.num_prefix_tokens = 1
        self.legacy = legacy
        self.head_bias = out_bias

        self.pixel_embed = PixelEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                                      in_dim=inner_dim, stride=first_stride, legacy=legacy, bias=out_bias)
        self.num_patches = self.pixel_embed.num_patches
        new_patch_size = self.pixel_embed.new_patch_size
        num_pixel = new_patch_size[0] * new_patch_size[1]

        self.norm1_proj = norm_layer(num_pixel * inner_dim)
        self.proj = Linear(num_pixel * inner_dim, embed_dim, has_bias=out_bias)
        self.norm2_proj = norm_layer(embed_dim)

        self.cls_token = trunc_normal_param((1, 1, embed_dim), name="cls_token")
        self.patch_pos = trunc_normal_param((1, self.num_patches + 1, embed_dim), name="patch_pos")
        self.pixel_pos = trunc_normal_param((1, inner_dim, new_patch_size[0], new_patch_size[1]), name="pixel_pos")
        self.pos_drop = make_dropout(pos_drop_rate)

        dpr = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.CellList([
            Block(dim=inner_dim, dim_out=embed_dim, num_pixel=num_pixel, num_heads_in=num_heads_inner,
                  num_heads_out=num_heads_outer, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                  proj_drop=proj_drop_rate, attn_drop=attn_drop_rate, drop_path=dpr[i],
                  act_layer=act_layer, norm_layer=norm_layer, legacy=legacy, out_bias=out_bias)
            for i in range(depth)])
        # one tap per block: its patch tokens as a map (timm's feature_info)
        self.feature_info = [dict(module=f"blocks.{i}", num_chs=embed_dim, reduction=max(to_2tuple(patch_size)))
                             for i in range(depth)]
        self.token_maps = TokenMaps(self.num_prefix_tokens)
        self.norm = norm_layer(embed_dim)
        self.head_drop = make_dropout(drop_rate)
        self.head = classifier_head(embed_dim, num_classes, init=False, bias=out_bias)
        init_weights_vit(self, std=0.02)

    def set_grad_checkpointing(self, enable=True):
        """Recompute each TNT block (inner and outer transformer) in the backward pass instead of keeping its
        activations (timm's API; ``layers/recompute.py``): less memory, one more forward pass per step."""
        self.grad_checkpointing = checkpoint_blocks(self.blocks, enable)

    def no_weight_decay(self):
        return {"patch_pos", "pixel_pos", "cls_token"}

    def _embed(self, x):
        """Image -> ``(pixel_embed, patch_embed)``: the inputs of the first block (class token first)."""
        b = x.shape[0]
        # The patch count from the (static) spatial size, not from the batch: the batch may be dynamic
        # (MindIR export with a None batch axis), the image size never is.
        grid_h, grid_w = self.pixel_embed.dynamic_feat_size((x.shape[2], x.shape[3]))
        num_patches = grid_h * grid_w
        pixel_embed = self.pixel_embed(x, self.pixel_pos)
        if num_patches != self.num_patches:
            raise ValueError(f"TNT: input of {num_patches} patches, but patch_pos was built for {self.num_patches} "
                             f"(create the model with the matching img_size)")
        patch_embed = self.norm2_proj(self.proj(self.norm1_proj(pixel_embed.reshape(b, num_patches, -1))))
        cls = ops.broadcast_to(self.cls_token.astype(patch_embed.dtype), (b, -1, -1))
        patch_embed = ops.cat((cls, patch_embed), axis=1) + self.patch_pos
        return pixel_embed, self.pos_drop(patch_embed)

    def forward_features(self, x):
        pixel_embed, patch_embed = self._embed(x)
        for blk in self.blocks:
            pixel_embed, patch_embed = blk(pixel_embed, patch_embed)
        return self.norm(patch_embed)

    def forward_intermediates(self, x, indices=None, return_prefix_tokens=False, norm=False, stop_early=False,
                              output_fmt="NCHW", intermediates_only=False):
        """timm's ``forward_intermediates``: the patch tokens after the blocks ``indices`` (None: all, an int n: the
        last n, a sequence: those, negative from the end), without the class token, as ``(B, C, H, W)`` maps
        (``"NCHW"``) or ``(B, H * W, C)`` (``"NLC"``); ``norm`` applies the final norm to each first;
        ``return_prefix_tokens`` pairs each with its class token. Unless ``intermediates_only``, the normed final
        tokens come first, as ``forward_features`` gives them. ``stop_early``/``intermediates_only`` skip the
        blocks after the last index."""
        check_output_fmt(output_fmt)
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        grid = self.pixel_embed.dynamic_feat_size((x.shape[2], x.shape[3]))
        pixel_embed, patch_embed = self._embed(x)
        run = max_index + 1 if stop_early or intermediates_only else len(self.blocks)
        intermediates = []
        for i in range(run):
            pixel_embed, patch_embed = self.blocks[i](pixel_embed, patch_embed)
            if i in take_indices:
                intermediates.append(self.norm(patch_embed) if norm else patch_embed)
        intermediates = self.token_maps(intermediates, grid, output_fmt, return_prefix_tokens)
        if intermediates_only:
            return intermediates
        return self.norm(patch_embed), intermediates

    def prune_intermediate_layers(self, indices=1, prune_norm=False, prune_head=True):
        return prune_block_stack(self, indices, prune_norm, prune_head)

    def forward_head(self, x, pre_logits=False):
        if self.global_pool == "avg":
            x = x[:, self.num_prefix_tokens:].mean(axis=1)
        elif self.global_pool == "token":
            x = x[:, 0]
        x = self.head_drop(x)
        if pre_logits:
            return x
        return self.head(x)

    def construct(self, x):
        return self.forward_head(self.forward_features(x))


# ----------------------------------------------------------------------------------------------------
# checkpoint conversion


# Official TNT (huawei-noah) names -> timm names, applied in this order to every key.
_OFFICIAL_RENAMES = (
    ("outer_pos", "patch_pos"),
    ("inner_pos", "pixel_pos"),
    ("patch_embed", "pixel_embed"),
    ("proj_norm1", "norm1_proj"),
    ("proj_norm2", "norm2_proj"),
    ("inner_norm1", "norm_in"),
    ("inner_attn", "attn_in"),
    ("inner_norm2", "norm_mlp_in"),
    ("inner_mlp", "mlp_in"),
    ("outer_norm1", "norm_out"),
    ("outer_attn", "attn_out"),
    ("outer_norm2", "norm_mlp"),
    ("outer_mlp", "mlp"),
)


def checkpoint_filter_fn(state_dict, model):
    """Map a timm (or official TNT) state dict of numpy arrays onto ``model``'s parameter names/shapes.

    * official checkpoints (``outer_pos``/``inner_pos`` ...) are renamed to timm's names and their
      ``(1, pixels, C)`` pixel position embedding is laid out as ``(1, C, h, w)`` for the current layout;
    * ``patch_pos`` is resampled (bicubic, class token kept) when the model's ``img_size`` gives
      another patch grid than the checkpoint's.
    """
    state_dict = dict(state_dict)
    state_dict.pop("outer_tokens", None)
    if "patch_pos" in state_dict:
        out = state_dict
    else:
        out = {}
        for key, value in state_dict.items():
            for old, new in _OFFICIAL_RENAMES:
                key = key.replace(old, new)
            if key == "pixel_pos" and value.ndim == 3 and not model.pixel_embed.legacy:
                value = _pixel_pos_grid(value)
            out[key] = value

    target = tuple(model.patch_pos.shape)
    if "patch_pos" in out and tuple(out["patch_pos"].shape) != target:
        out["patch_pos"] = resample_abs_pos_embed_np(out["patch_pos"], new_size=model.pixel_embed.grid_size,
                                                     num_prefix_tokens=model.num_prefix_tokens)
    return {k: np.asarray(v) for k, v in out.items()}


def _pixel_pos_grid(value):
    """A ``(1, pixels, C)`` pixel position embedding (added after the pixels are tokens) as ``(1, C, h, w)``."""
    b, n, c = value.shape
    side = int(round(math.sqrt(n)))
    if side * side != n:
        raise ValueError(f"pixel_pos with {n} pixels is not a square grid")
    return np.asarray(value).transpose(0, 2, 1).reshape(b, c, side, side)


# The MindSpore model zoo's TNT code (research/cv/TNT) names its top-level second norm ``proj_norm2_tnt``; the
# rest are the official names.
_SEED_RENAMES = (("proj_norm2_tnt", "norm2_proj"),) + _OFFICIAL_RENAMES


def seed_checkpoint_filter_fn(state_dict):
    """The MindSpore model zoo's TNT checkpoint (names without the training wrapper's prefix) -> the names and
    shapes of ``tnt_s_patch16_224_mindspore_seed``: official names, ``gamma``/``beta`` -> ``weight``/``bias``, its
    separate q and k layers joined, ``inner_pos (1, pixels, C)`` laid out as ``pixel_pos (1, C, h, w)``."""
    out = {}
    for key, value in state_dict.items():
        for old, new in _SEED_RENAMES:
            key = key.replace(old, new)
        key = norm_names(key)
        out[key] = _pixel_pos_grid(value) if key == "pixel_pos" and np.ndim(value) == 3 else np.asarray(value)
    return join_layers(out, ("q", "k"), "qk")


SEED_FORMAT = register_seed_format(SeedFormat(
    source="the MindSpore model zoo's TNT code (research/cv/TNT)",
    markers=frozenset({"proj_norm2_tnt.gamma", "outer_pos", "inner_pos", "blocks.0.inner_attn.q.weight"}),
    variants={"tnt_s_patch16_224": "tnt_s_patch16_224_mindspore_seed"},
    convert=seed_checkpoint_filter_fn))


# ----------------------------------------------------------------------------------------------------
# builder, default cfgs and variants


def _create_tnt(variant, pretrained=None, model_args=None, **kwargs):
    # features_only: the last three blocks' maps by default (timm's out_indices=3)
    return build_model_with_cfg(TNT, variant, pretrained, model_args, feature_cfg=dict(out_indices=3), **kwargs)


def _cfg(**kwargs):
    cfg = dict(input_size=(3, 224, 224), crop_pct=0.9, interpolation="bicubic", mean=IMAGENET_INCEPTION_MEAN,
               std=IMAGENET_INCEPTION_STD, num_classes=1000, fixed_input_size=True, first_conv="pixel_embed.proj",
               classifier="head", paper_ids="arXiv:2103.00112")
    return make_cfg(**dict(cfg, **kwargs))


# Every variant is registered with the family's checkpoint filter: the converter and create_model(pretrained=...)
# find it through the registry (mszoo/models/registry.py: checkpoint_filter).
register_variant = partial(register_model, checkpoint_filter=checkpoint_filter_fn)


@register_variant(default_cfg=_cfg(hf_hub_id="timm/tnt_s_legacy_patch16_224.in1k"))
def tnt_s_legacy_patch16_224(pretrained=None, **kwargs):
    """TNT-S in the original (legacy) layout that the original TNT-S weights use."""
    model_args = dict(patch_size=16, embed_dim=384, inner_dim=24, depth=12, num_heads_outer=6,
                      qkv_bias=False, legacy=True)
    return _create_tnt("tnt_s_legacy_patch16_224", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(hf_hub_id="timm/tnt_s_patch16_224.in1k"))
def tnt_s_patch16_224(pretrained=None, **kwargs):
    """TNT-S (current layout): 384-d patches, 24-d pixels, 12 blocks, 6 outer / 4 inner heads."""
    model_args = dict(patch_size=16, embed_dim=384, inner_dim=24, depth=12, num_heads_outer=6, qkv_bias=False)
    return _create_tnt("tnt_s_patch16_224", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(hf_hub_id="timm/tnt_b_patch16_224.in1k"))
def tnt_b_patch16_224(pretrained=None, **kwargs):
    """TNT-B (current layout): 640-d patches, 40-d pixels, 12 blocks, 10 outer / 4 inner heads."""
    model_args = dict(patch_size=16, embed_dim=640, inner_dim=40, depth=12, num_heads_outer=10, qkv_bias=False)
    return _create_tnt("tnt_b_patch16_224", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, crop_pct=0.875,
                                 top1=81.47, top5=95.42,
                                 accuracy_source="MindSpore model zoo TNT readme (research/cv/TNT), 8 Ascend 910"))
def tnt_s_patch16_224_mindspore_seed(pretrained=None, **kwargs):
    """TNT-S as the MindSpore model zoo's TNT code builds it (``research/cv/TNT``), for checkpoints trained with
    that code; not the published TNT-S. Its pixel conv, patch projection, attention/MLP output layers and head
    have no bias, its GELU is the tanh approximation (``nn.GELU()``'s default) and its LayerNorm eps 1e-7
    (``nn.LayerNorm``'s). The cfg is that code's eval preprocessing (resize 256/224, ImageNet mean/std) and
    its readme's accuracy."""
    model_args = dict(patch_size=16, embed_dim=384, inner_dim=24, depth=12, num_heads_outer=6, qkv_bias=False,
                      out_bias=False, act_layer=GELUTanh, norm_layer=partial(LayerNorm, eps=1e-7))
    return _create_tnt("tnt_s_patch16_224_mindspore_seed", pretrained, model_args, **kwargs)
