"""Twins (PCPVT and SVT) in MindSpore.

`Twins: Revisiting the Design of Spatial Attention in Vision Transformers`
(Chu et al., 2021, https://arxiv.org/abs/2104.13840).

Both families are four-stage pyramids. Every stage starts with a strided patch embedding (4x4 for the
first stage, 2x2 after), runs its transformer blocks and applies a conditional position encoding
(PEG: a depthwise 3x3 convolution with a residual) right after the stage's first block.

* PCPVT uses global sub-sampled attention (GSA) in every block: keys and values come from a feature
  map reduced by an ``sr_ratio`` x ``sr_ratio`` strided convolution followed by LayerNorm.
* SVT alternates locally grouped attention (LSA, self attention inside ``ws`` x ``ws`` windows, the
  map zero-padded at the bottom/right when it is not a multiple of ``ws``) with GSA.

Parameter names follow timm's ``timm/models/twins.py`` so converted timm or official checkpoints load
without renaming; the spatial size is read from the input, so any size divisible by 32 works.

``twins_pcpvt_{small,base,large}_mindspore_seed`` are PCPVT as the Twins Ascend readme's MindSpore code
(``src/models/twin.py``, ``pcpvt_*_v0``) builds it, for checkpoints trained with that code: the same layers with
MindSpore's default tanh GELU. Its checkpoints (``nn.LayerNorm``'s ``gamma``/``beta``, separate ``k``/``v``
layers) are recognised by their names (``SEED_FORMAT``, mszoo/models/seeds.py) and mapped by
:func:`seed_checkpoint_filter_fn`.
"""
from functools import partial

import numpy as np
from mindspore import nn, ops

from mszoo.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .builder import build_model_with_cfg
from .layers import (
    GELU,
    ClassifierMixin,
    DropPath,
    GELUTanh,
    HeadsToTokens,
    LayerNorm,
    Linear,
    MapToWindows,
    Mlp,
    PatchConv,
    PatchEmbed,
    PosConv,
    ScaledDotProduct,
    SplitHeads,
    TokensToHeads,
    TokensToMap,
    WindowsToMap,
    check_output_fmt,
    checkpoint_blocks,
    classifier_head,
    drop_path_rates,
    feature_take_indices,
    init_weights_vit,
    make_dropout,
)
from .registry import make_cfg, register_model
from .seeds import SeedFormat, join_layers, norm_names, register_seed_format

__all__ = ["Twins", "Block", "GlobalSubSampleAttn", "LocallyGroupedAttn", "PosConv", "checkpoint_filter_fn",
           "seed_checkpoint_filter_fn"]

_TWINS_NORM_EPS = 1e-6  # the blocks' and the final norm's eps (timm: partial(nn.LayerNorm, eps=1e-6))


def _twins_norm(dim):
    return LayerNorm(dim, eps=_TWINS_NORM_EPS)


def _check_heads(dim, num_heads):
    if dim % num_heads != 0:
        raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")


class LocallyGroupedAttn(nn.Cell):
    """LSA: multi-head self attention restricted to non-overlapping ``ws`` x ``ws`` windows.

    A map whose height or width is not a multiple of ``ws`` is zero-padded at the bottom/right before
    the qkv projection (the padded tokens take part in the attention, as in the reference), and the
    padding is cropped away before the output projection.
    """

    def __init__(self, dim, num_heads=8, attn_drop=0.0, proj_drop=0.0, ws=1):
        super().__init__()
        if ws <= 1:
            raise ValueError(f"LocallyGroupedAttn needs a window size > 1, got {ws}")
        _check_heads(dim, num_heads)
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.ws = ws
        self.qkv = Linear(dim, dim * 3, has_bias=True)
        self.split_heads = SplitHeads(3, num_heads)
        self.merge_heads = HeadsToTokens()
        self.to_windows = MapToWindows(ws)
        self.to_map = WindowsToMap()
        self.attend = ScaledDotProduct(self.head_dim ** -0.5, attn_drop)
        self.proj = Linear(dim, dim)
        self.proj_drop = make_dropout(proj_drop)

    def construct(self, x, size):
        b, n, c = x.shape
        h, w = size
        ws = self.ws
        pad_r = (ws - w % ws) % ws
        pad_b = (ws - h % ws) % ws
        x = x.reshape(b, h, w, c)
        if pad_r > 0 or pad_b > 0:
            # ops.Pad (not ops.pad / PadV3): it exports to ONNX.
            x = ops.Pad(((0, 0), (0, pad_b), (0, pad_r), (0, 0)))(x)
        gh = (h + pad_b) // ws
        gw = (w + pad_r) // ws
        x = self.to_windows(x)
        # q, k, v: (B * windows, heads, ws*ws, head_dim); 4-D, the attention form OpenVINO fuses (as the global one)
        q, k, v = self.split_heads(self.qkv(x).reshape(b * gh * gw, ws * ws, 3 * c))
        x = self.to_map(self.merge_heads(self.attend(q, k, v)).reshape(b, gh, gw, ws, ws, c))
        if pad_r > 0 or pad_b > 0:
            x = x[:, :h, :w, :]
        x = x.reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class GlobalSubSampleAttn(nn.Cell):
    """GSA: every query attends to keys/values of a sub-sampled map.

    With ``sr_ratio > 1`` the map is reduced by a ``sr_ratio``-strided ``sr_ratio`` x ``sr_ratio``
    convolution followed by LayerNorm (PyTorch's default eps 1e-5, as the reference); with
    ``sr_ratio == 1`` it is plain global attention with separate q and kv projections.
    """

    def __init__(self, dim, num_heads=8, attn_drop=0.0, proj_drop=0.0, sr_ratio=1):
        super().__init__()
        _check_heads(dim, num_heads)
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = Linear(dim, dim, has_bias=True)
        self.kv = Linear(dim, dim * 2, has_bias=True)
        self.attend = ScaledDotProduct(self.head_dim ** -0.5, attn_drop)
        self.proj = Linear(dim, dim)
        self.proj_drop = make_dropout(proj_drop)
        self.to_heads = TokensToHeads(num_heads)
        self.split_kv = SplitHeads(2, num_heads)
        self.merge_heads = HeadsToTokens()
        self.sr_ratio = sr_ratio
        self.use_sr = sr_ratio > 1
        if self.use_sr:
            self.sr = PatchConv(dim, dim, sr_ratio)
            self.norm = LayerNorm(dim)
        else:
            self.sr = None
            self.norm = None

    def construct(self, x, size):
        q = self.to_heads(self.q(x))
        if self.use_sr:
            x, _ = self.sr.from_tokens(x, size)
            x = self.norm(x)
        k, v = self.split_kv(self.kv(x))
        x = self.merge_heads(self.attend(q, k, v))
        return self.proj_drop(self.proj(x))


class Block(nn.Cell):
    """Pre-norm transformer block; ``ws == 1`` selects GSA, ``ws > 1`` LSA with that window."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, proj_drop=0.0, attn_drop=0.0, drop_path=0.0,
                 act_layer=GELU, norm_layer=_twins_norm, sr_ratio=1, ws=1):
        super().__init__()
        self.norm1 = norm_layer(dim)
        if ws is None or ws == 1:
            self.attn = GlobalSubSampleAttn(dim, num_heads, attn_drop, proj_drop, sr_ratio)
        else:
            self.attn = LocallyGroupedAttn(dim, num_heads, attn_drop, proj_drop, ws)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer, drop=proj_drop)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def construct(self, x, size):
        x = x + self.drop_path1(self.attn(self.norm1(x), size))
        x = x + self.drop_path2(self.mlp(self.norm2(x)))
        return x


class Twins(ClassifierMixin, nn.Cell):
    """Twins vision transformer (PCPVT when ``wss`` is None, SVT otherwise).

    Args:
        img_size: nominal input size (kept for the cfg; the spatial size is read from the input).
        patch_size: first stage's patch size (later stages use 2).
        embed_dims, num_heads, mlp_ratios, depths, sr_ratios: per stage.
        wss: per-stage LSA window sizes (SVT: even blocks use LSA, odd blocks GSA); None for PCPVT.
        drop_rate: dropout before the classifier; pos_drop_rate: after each patch embedding;
        proj_drop_rate / attn_drop_rate: in the blocks; drop_path_rate: stochastic depth, linearly
        increasing over all blocks.
        act_layer: the MLPs' activation (exact GELU; ``GELUTanh`` in the model-zoo code's variants).
    """

    GLOBAL_POOLS = ("avg", "")

    def __init__(self, img_size=224, patch_size=4, in_chans=3, num_classes=1000, global_pool="avg",
                 embed_dims=(64, 128, 256, 512), num_heads=(1, 2, 4, 8), mlp_ratios=(4, 4, 4, 4),
                 depths=(3, 4, 6, 3), sr_ratios=(8, 4, 2, 1), wss=None, drop_rate=0.0, pos_drop_rate=0.0,
                 proj_drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, norm_layer=_twins_norm,
                 block_cls=Block, act_layer=GELU):
        super().__init__()
        self.check_pool(global_pool)
        num_stages = len(depths)
        for name, values in (("embed_dims", embed_dims), ("num_heads", num_heads), ("mlp_ratios", mlp_ratios),
                             ("sr_ratios", sr_ratios)) + ((("wss", wss),) if wss is not None else ()):
            if len(values) != num_stages:
                raise ValueError(f"{name} has {len(values)} entries, depths has {num_stages}")
        self.num_classes = num_classes
        self.grad_checkpointing = False
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.img_size = img_size
        self.depths = tuple(int(d) for d in depths)
        self.embed_dims = tuple(int(d) for d in embed_dims)
        self.num_stages = num_stages
        self.num_features = self.head_hidden_size = self.embed_dims[-1]

        patch_embeds, pos_drops = [], []
        prev_chs = in_chans
        for i in range(num_stages):
            patch_embeds.append(PatchEmbed(patch_size if i == 0 else 2, prev_chs, self.embed_dims[i]))
            pos_drops.append(make_dropout(pos_drop_rate))
            prev_chs = self.embed_dims[i]
        self.patch_embeds = nn.CellList(patch_embeds)
        self.pos_drops = nn.CellList(pos_drops)

        total = sum(self.depths)
        dpr = drop_path_rates(drop_path_rate, total)
        stages = []
        cur = 0
        for k in range(num_stages):
            stages.append(nn.CellList([
                block_cls(dim=self.embed_dims[k], num_heads=num_heads[k], mlp_ratio=mlp_ratios[k],
                          proj_drop=proj_drop_rate, attn_drop=attn_drop_rate, drop_path=dpr[cur + i],
                          norm_layer=norm_layer, act_layer=act_layer, sr_ratio=sr_ratios[k],
                          ws=1 if wss is None or i % 2 == 1 else wss[k])
                for i in range(self.depths[k])
            ]))
            cur += self.depths[k]
        self.blocks = nn.CellList(stages)
        self.pos_block = nn.CellList([PosConv(d, d) for d in self.embed_dims])
        # one tap per stage: its output map (timm's feature_info; reduction = the stage's stride)
        self.feature_info = [dict(module=f"blocks.{k}", num_chs=self.embed_dims[k], reduction=patch_size * 2 ** k)
                             for k in range(num_stages)]
        self.to_map = TokensToMap()  # between stages
        self.norm = norm_layer(self.num_features)

        self.head_drop = make_dropout(drop_rate)
        self.head = classifier_head(self.num_features, num_classes, init=False)

        init_weights_vit(self, std=0.02, conv_fan_out=True)

    def set_grad_checkpointing(self, enable=True):
        """Recompute each transformer block in the backward pass instead of keeping its activations (timm's API;
        ``layers/recompute.py``): less memory, one more forward pass of the blocks per step."""
        self.grad_checkpointing = checkpoint_blocks((blk for stage in self.blocks for blk in stage), enable)

    def no_weight_decay(self):
        """The PEG convolutions' parameters (weights and biases), as timm."""
        names = set()
        for k, pos_blk in enumerate(self.pos_block):
            for name, _ in pos_blk.parameters_and_names(name_prefix=f"pos_block.{k}"):
                names.add(name)
        return names

    def _run_stage(self, i, x):
        """Stage ``i``: patch embedding, its blocks with the PEG after the first; returns tokens and grid."""
        x, size = self.patch_embeds[i](x)
        x = self.pos_drops[i](x)
        stage = self.blocks[i]
        for j in range(self.depths[i]):
            x = stage[j](x, size)
            if j == 0:
                x = self.pos_block[i](x, size)  # PEG after the stage's first block
        return x, size

    def forward_features(self, x):
        for i in range(self.num_stages):
            x, size = self._run_stage(i, x)
            if i < self.num_stages - 1:
                x = self.to_map(x, size)
        return self.norm(x)

    def forward_intermediates(self, x, indices=None, norm=False, stop_early=False, output_fmt="NCHW",
                              intermediates_only=False):
        """timm's ``forward_intermediates``: the output maps ``(B, C, H, W)`` of the stages ``indices`` (None: all,
        an int n: the last n, a sequence: those, negative from the end) and, unless ``intermediates_only``, the
        final tokens as ``forward_features`` gives them. ``norm`` applies the final norm to the last stage's map
        (the only one it is sized for). With ``stop_early`` (or ``intermediates_only``) later stages are skipped."""
        check_output_fmt(output_fmt, ("NCHW",))
        take_indices, max_index = feature_take_indices(self.num_stages, indices)
        last = self.num_stages - 1
        run = max_index + 1 if stop_early or intermediates_only else self.num_stages
        intermediates = []
        for i in range(run):
            x, size = self._run_stage(i, x)
            if i < last:
                x = self.to_map(x, size)
                if i in take_indices:
                    intermediates.append(x)
            elif i in take_indices:
                feat = self.norm(x) if norm else x
                intermediates.append(self.to_map(feat, size))
        if intermediates_only:
            return intermediates
        if run - 1 == last:
            x = self.norm(x)  # the final norm is sized for (and applied to) the last stage only
        return x, intermediates

    def prune_intermediate_layers(self, indices=1, prune_norm=False, prune_head=True):
        """Drop the stages after the last of ``indices``, the final norm (``prune_norm``, or when the last stage
        goes: it is sized for it) and the classifier (``prune_head``, or when the last stage goes); returns the
        absolute indices. As timm's."""
        take_indices, max_index = feature_take_indices(self.num_stages, indices)
        keep = max_index + 1
        prune_end = keep < self.num_stages
        self.patch_embeds = self.patch_embeds[:keep]
        self.pos_drops = self.pos_drops[:keep]
        self.blocks = self.blocks[:keep]
        self.pos_block = self.pos_block[:keep]
        self.num_stages = keep
        self.depths = self.depths[:keep]
        self.embed_dims = self.embed_dims[:keep]
        if prune_norm or prune_end:
            self.norm = nn.Identity()
        if prune_end:
            self.num_features = self.head_hidden_size = self.embed_dims[-1]
        if prune_head or prune_end:
            self.reset_classifier(0, "")
        return take_indices

    def forward_head(self, x, pre_logits=False):
        if self.global_pool == "avg":
            x = x.mean(axis=1)
        x = self.head_drop(x)
        if pre_logits:
            return x
        return self.head(x)

    def construct(self, x):
        x = self.forward_features(x)
        return self.forward_head(x)


def checkpoint_filter_fn(state_dict, model):
    """Map a timm (or official Meituan) Twins state dict onto ``model``.

    The parameter names are the same on both sides and no tensor needs reshaping (PyTorch Linear and
    MindSpore Dense both store ``(out, in)``, convs ``(out, in/groups, kh, kw)``, and PEG has no
    resolution-dependent tensors). What differs: a model built without a classifier
    (``num_classes=0``) drops ``head.*``, and entries that are not parameters (e.g. BatchNorm-style
    counters some training wrappers add) are dropped when the model has no such parameter.
    """
    own = {p.name for p in model.get_parameters()}
    out = {}
    for key, value in state_dict.items():
        if key.startswith("head.") and key not in own:
            continue
        if key.endswith("num_batches_tracked"):
            continue
        out[key] = value
    return out


def seed_checkpoint_filter_fn(state_dict):
    """The Twins Ascend readme's MindSpore checkpoint (names without the training wrapper's prefix) -> our names:
    ``gamma``/``beta`` -> ``weight``/``bias`` and its separate ``k``/``v`` layers joined into ``kv``."""
    return join_layers({norm_names(k): np.asarray(v) for k, v in state_dict.items()}, ("k", "v"), "kv")


SEED_FORMAT = register_seed_format(SeedFormat(
    source="the Twins Ascend readme's MindSpore code (src/models/twin.py)",
    markers=frozenset({"patch_embeds.0.norm.gamma", "blocks.0.0.attn.q.weight", "blocks.0.0.attn.k.weight",
                       "blocks.0.0.attn.v.weight", "pos_block.0.proj.0.weight"}),
    variants={f"{seed}_{size}{suffix}": f"twins_pcpvt_{size}_mindspore_seed" for size in ("small", "base", "large")
              for seed, suffix in (("pcpvt", "_v0"), ("twins_pcpvt", ""))},
    convert=seed_checkpoint_filter_fn))


def _create_twins(variant, pretrained=None, model_args=None, **kwargs):
    # features_only: the four stages' maps by default (timm's out_indices=4, the last four)
    return build_model_with_cfg(Twins, variant, pretrained, model_args, feature_cfg=dict(out_indices=4), **kwargs)


def _cfg(**kwargs):
    cfg = dict(input_size=(3, 224, 224), crop_pct=0.9, crop_mode="center", interpolation="bicubic",
               mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, num_classes=1000, pool_size=None,
               first_conv="patch_embeds.0.proj", classifier="head", license="apache-2.0")
    return make_cfg(**dict(cfg, **kwargs))


# Every variant is registered with the family's checkpoint filter: the converter and create_model(pretrained=...)
# find it through the registry (mszoo/models/registry.py: checkpoint_filter).
register_variant = partial(register_model, checkpoint_filter=checkpoint_filter_fn)


@register_variant(default_cfg=_cfg(hf_hub_id="timm/twins_pcpvt_small.in1k"))
def twins_pcpvt_small(pretrained=None, **kwargs):
    model_args = dict(patch_size=4, embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
                      depths=(3, 4, 6, 3), sr_ratios=(8, 4, 2, 1))
    return _create_twins("twins_pcpvt_small", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(hf_hub_id="timm/twins_pcpvt_base.in1k"))
def twins_pcpvt_base(pretrained=None, **kwargs):
    model_args = dict(patch_size=4, embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
                      depths=(3, 4, 18, 3), sr_ratios=(8, 4, 2, 1))
    return _create_twins("twins_pcpvt_base", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(hf_hub_id="timm/twins_pcpvt_large.in1k"))
def twins_pcpvt_large(pretrained=None, **kwargs):
    model_args = dict(patch_size=4, embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
                      depths=(3, 8, 27, 3), sr_ratios=(8, 4, 2, 1))
    return _create_twins("twins_pcpvt_large", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(hf_hub_id="timm/twins_svt_small.in1k"))
def twins_svt_small(pretrained=None, **kwargs):
    model_args = dict(patch_size=4, embed_dims=(64, 128, 256, 512), num_heads=(2, 4, 8, 16), mlp_ratios=(4, 4, 4, 4),
                      depths=(2, 2, 10, 4), wss=(7, 7, 7, 7), sr_ratios=(8, 4, 2, 1))
    return _create_twins("twins_svt_small", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(hf_hub_id="timm/twins_svt_base.in1k"))
def twins_svt_base(pretrained=None, **kwargs):
    model_args = dict(patch_size=4, embed_dims=(96, 192, 384, 768), num_heads=(3, 6, 12, 24), mlp_ratios=(4, 4, 4, 4),
                      depths=(2, 2, 18, 2), wss=(7, 7, 7, 7), sr_ratios=(8, 4, 2, 1))
    return _create_twins("twins_svt_base", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_cfg(hf_hub_id="timm/twins_svt_large.in1k"))
def twins_svt_large(pretrained=None, **kwargs):
    model_args = dict(patch_size=4, embed_dims=(128, 256, 512, 1024), num_heads=(4, 8, 16, 32),
                      mlp_ratios=(4, 4, 4, 4), depths=(2, 2, 18, 2), wss=(7, 7, 7, 7), sr_ratios=(8, 4, 2, 1))
    return _create_twins("twins_svt_large", pretrained, model_args, **kwargs)


def _seed_cfg(**kwargs):
    """The model-zoo code's eval preprocessing (twin_s.yaml: resize 224 / 0.875, bicubic, ImageNet mean/std)."""
    return _cfg(crop_pct=0.875, accuracy_source="Twins Ascend readme (MindSpore code), 8 Ascend 910", **kwargs)


@register_variant(default_cfg=_seed_cfg(top1=81.35, top5=95.72))
def twins_pcpvt_small_mindspore_seed(pretrained=None, **kwargs):
    """PCPVT-S as the Twins Ascend readme's MindSpore code builds it (``pcpvt_small_v0``): tanh GELU; not the
    published model. Its readme's accuracy in the cfg."""
    model_args = dict(patch_size=4, embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
                      depths=(3, 4, 6, 3), sr_ratios=(8, 4, 2, 1), act_layer=GELUTanh)
    return _create_twins("twins_pcpvt_small_mindspore_seed", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_seed_cfg(top1=None, top5=None))
def twins_pcpvt_base_mindspore_seed(pretrained=None, **kwargs):
    """PCPVT-B as that code builds it (``pcpvt_base_v0``): tanh GELU. Its readme reports no accuracy for it."""
    model_args = dict(patch_size=4, embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
                      depths=(3, 4, 18, 3), sr_ratios=(8, 4, 2, 1), act_layer=GELUTanh)
    return _create_twins("twins_pcpvt_base_mindspore_seed", pretrained, model_args, **kwargs)


@register_variant(default_cfg=_seed_cfg(top1=None, top5=None))
def twins_pcpvt_large_mindspore_seed(pretrained=None, **kwargs):
    """PCPVT-L as that code builds it (``pcpvt_large_v0``): tanh GELU. Its readme reports no accuracy for it."""
    model_args = dict(patch_size=4, embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
                      depths=(3, 8, 27, 3), sr_ratios=(8, 4, 2, 1), act_layer=GELUTanh)
    return _create_twins("twins_pcpvt_large_mindspore_seed", pretrained, model_args, **kwargs)
