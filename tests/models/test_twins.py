"""Twins (PCPVT / SVT): parity with timm, checkpoint conversion and behaviour."""
import os

import mindspore as ms
import numpy as np
import pytest

from mszoo.models import create_model, get_default_cfg, resolve_name
from mszoo.models import twins as twins_mod
from mszoo.models.convert import convert_state_dict
from mszoo.models.layers import DropPath, GELUTanh, LayerNorm
from mszoo.models.loading import CheckpointError, CheckpointFile
from tests.parity import torch_and_timm, torch_state_dict_numpy

TWINS_VARIANTS = ["twins_pcpvt_small", "twins_pcpvt_base", "twins_pcpvt_large",
                  "twins_svt_small", "twins_svt_base", "twins_svt_large"]


# Tiny widths; two blocks per stage so SVT runs both LSA (even blocks) and GSA (odd blocks).
TINY = dict(embed_dims=(16, 32, 48, 64), num_heads=(1, 2, 3, 4), depths=(2, 2, 2, 2), num_classes=5)
FAMILIES = ["twins_pcpvt_small", "twins_svt_small"]


def _tiny(arch, **kw):
    return create_model(arch, **dict(TINY, **kw))


def _batch(h=64, w=64, batch=2, seed=1):
    return ms.Tensor(np.random.RandomState(seed).randn(batch, 3, h, w).astype(np.float32))


# ---------------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("hw", [(64, 96), (96, 64)])
def test_tiny_non_square_input_matches_timm_including_window_padding(arch, hw):
    # 64x96 gives stage maps 16x24, 8x12, 4x6, 2x3: none is a multiple of SVT's window 7, so every
    # LSA block pads; PCPVT's sub-sampling convs floor the same way in both frameworks.
    torch, timm = torch_and_timm()
    kw = {k: v for k, v in TINY.items() if k != "num_classes"}
    torch.manual_seed(0)
    ref = timm.create_model(arch, num_classes=TINY["num_classes"], **{k: list(v) for k, v in kw.items()}).eval()
    ours, dropped = convert_state_dict(arch, torch_state_dict_numpy(ref), **kw)
    assert not dropped
    ours.set_train(False)
    x = np.random.RandomState(3).randn(2, 3, *hw).astype(np.float32)
    with torch.no_grad():
        ref_out = ref(torch.from_numpy(x)).numpy()
    our_out = ours(ms.Tensor(x)).asnumpy()
    assert our_out.shape == (2, TINY["num_classes"])
    assert np.abs(ref_out - our_out).max() < 1e-5


def _far_from_initialisation(ref, seed=0):
    """Redraw a timm model's parameters so that attention is sharp: timm's std-0.02 init keeps the attention
    logits near 0.1 and the softmax near uniform, where a wrong attention scale barely shows. Linear and
    convolution weights get ``randn / sqrt(fan_in)`` (queries and keys 3x that: logits of order 10), norm
    weights ``1 + 0.1 randn``, biases and the rest ``0.1 randn``."""
    import torch

    rs = np.random.RandomState(seed)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            shape = tuple(p.shape)
            if len(shape) >= 2:
                gain = 3.0 if any(f".{k}.weight" in f".{name}" for k in ("q", "kv", "qkv")) else 1.0
                value = rs.randn(*shape) * gain / np.sqrt(np.prod(shape[1:]))
            elif name.endswith("weight"):
                value = 1.0 + 0.1 * rs.randn(*shape)
            else:
                value = 0.1 * rs.randn(*shape)
            p.copy_(torch.from_numpy(value.astype(np.float32)))
    return ref


@pytest.mark.parametrize("arch", FAMILIES)
def test_sharp_attention_matches_timm_relative_to_the_logits_scale(arch):
    """Parity away from initialisation: LSA and GSA with peaked attention maps (see _far_from_initialisation),
    within 1e-4 of the logits' own scale; a wrong attention scale moves the logits by a large fraction of it."""
    torch, timm = torch_and_timm()
    kw = {k: v for k, v in TINY.items() if k != "num_classes"}
    torch.manual_seed(0)
    ref = timm.create_model(arch, num_classes=TINY["num_classes"], **{k: list(v) for k, v in kw.items()})
    ref = _far_from_initialisation(ref.eval())
    ours, _ = convert_state_dict(arch, torch_state_dict_numpy(ref), **kw)
    ours.set_train(False)
    x = np.random.RandomState(3).randn(2, 3, 64, 64).astype(np.float32)
    with torch.no_grad():
        ref_out = ref(torch.from_numpy(x)).numpy()
    our_out = ours(ms.Tensor(x)).asnumpy()
    scale = np.abs(ref_out).max()
    assert scale > 1.0, scale  # logits well away from the near-zero outputs of the initialisation
    assert np.abs(ref_out - our_out).max() < 1e-4 * scale, (np.abs(ref_out - our_out).max(), scale)


def test_default_cfg_matches_timm():
    _, timm = torch_and_timm()
    for arch in TWINS_VARIANTS:
        ours = get_default_cfg(arch)
        ref = timm.models.get_pretrained_cfg(arch).to_dict()
        for key in ("input_size", "crop_pct", "crop_mode", "interpolation", "mean", "std", "num_classes",
                    "first_conv", "classifier"):
            want = tuple(ref[key]) if isinstance(ref[key], (tuple, list)) else ref[key]
            got = tuple(ours[key]) if isinstance(ours[key], (tuple, list)) else ours[key]
            assert got == want, (arch, key)


def test_seed_aliases_resolve_to_twins_names():
    assert resolve_name("pcpvt_small_v0") == "twins_pcpvt_small"
    assert resolve_name("alt_gvt_base") == "twins_svt_base"


# ---------------------------------------------------------------------------------------------- conversion


def test_checkpoint_filter_is_identity_for_timm_keys():
    model = _tiny("twins_svt_small")
    state = {p.name: np.zeros(p.shape, np.float32) for p in model.get_parameters()}
    mapped = twins_mod.checkpoint_filter_fn(dict(state), model)
    assert set(mapped) == set(state)


def test_checkpoint_filter_drops_head_for_headless_model():
    with_head = _tiny("twins_pcpvt_small")
    state = {p.name: np.zeros(p.shape, np.float32) for p in with_head.get_parameters()}
    headless = _tiny("twins_pcpvt_small", num_classes=0)
    mapped = twins_mod.checkpoint_filter_fn(dict(state), headless)
    assert not any(k.startswith("head.") for k in mapped)
    assert set(mapped) == {p.name for p in headless.get_parameters()}


# ---------------------------------------------------------------------------------------------- behaviour


def test_svt_alternates_local_and_global_attention_and_pcpvt_is_global():
    svt = _tiny("twins_svt_small")
    kinds = [type(blk.attn) for stage in svt.blocks for blk in stage]
    assert kinds == [twins_mod.LocallyGroupedAttn, twins_mod.GlobalSubSampleAttn] * 4
    pcpvt = _tiny("twins_pcpvt_small")
    assert all(isinstance(blk.attn, twins_mod.GlobalSubSampleAttn) for stage in pcpvt.blocks for blk in stage)
    # spatial reduction only where sr_ratio > 1 (last stage has sr_ratio 1)
    assert [stage[0].attn.sr is not None for stage in pcpvt.blocks] == [True, True, True, False]


def test_layer_norm_eps_follows_timm():
    model = _tiny("twins_pcpvt_small")
    assert model.norm.eps == 1e-6 and model.blocks[0][0].norm1.eps == 1e-6
    assert model.patch_embeds[0].norm.eps == 1e-5 and model.blocks[0][0].attn.norm.eps == 1e-5
    assert isinstance(model.blocks[0][0].attn.norm, LayerNorm)


def test_drop_path_rates_increase_linearly_over_all_blocks():
    model = _tiny("twins_pcpvt_small", drop_path_rate=0.7)
    rates = [blk.drop_path1.drop_prob if isinstance(blk.drop_path1, DropPath) else 0.0
             for stage in model.blocks for blk in stage]
    np.testing.assert_allclose(rates, np.linspace(0, 0.7, 8), atol=1e-7)


def test_forward_head_pre_logits_returns_pooled_features():
    model = _tiny("twins_svt_small")
    model.set_train(False)
    feats = model.forward_features(_batch())
    assert feats.shape == (2, 2 * 2, TINY["embed_dims"][-1])  # 64 / 32 = 2 -> 2x2 tokens in the last stage
    assert model.forward_head(feats, pre_logits=True).shape == (2, TINY["embed_dims"][-1])


def test_no_weight_decay_lists_the_peg_parameters():
    model = _tiny("twins_svt_small")
    expected = {f"pos_block.{k}.proj.0.{w}" for k in range(4) for w in ("weight", "bias")}
    assert model.no_weight_decay() == expected
    assert expected <= {p.name for p in model.get_parameters()}


def test_weight_init_follows_timm():
    ms.set_seed(0)
    model = create_model("twins_pcpvt_small", embed_dims=(64, 64, 64, 64), num_heads=(1, 1, 1, 1),
                         depths=(1, 1, 1, 1), mlp_ratios=(4, 4, 4, 4))
    dense = model.blocks[0][0].mlp.fc1
    assert abs(float(dense.weight.asnumpy().std()) - 0.02) < 0.002
    assert not dense.bias.asnumpy().any()
    peg = model.pos_block[0].proj[0]  # depthwise 3x3: fan_out = 9 * 64 / 64 = 9
    assert abs(float(peg.weight.asnumpy().std()) - np.sqrt(2.0 / 9)) < 0.06
    sr = model.blocks[0][0].attn.sr  # 8x8 conv 64->64: fan_out = 64 * 64
    assert abs(float(sr.weight.asnumpy().std()) - np.sqrt(2.0 / (64 * 64))) < 0.002
    assert (model.norm.weight.asnumpy() == 1).all() and not model.norm.bias.asnumpy().any()


def test_mismatched_heads_are_rejected():
    with pytest.raises(ValueError, match="divisible"):
        create_model("twins_svt_small", embed_dims=(16, 32, 48, 64), num_heads=(3, 2, 3, 4), depths=(1, 1, 1, 1))


# ------------------------------------------------------------------- checkpoints of the readme's own code

# tests/fixtures/seed_ckpt/make_seed_fixtures.py --family twins: the Twins Ascend readme's MindSpore code
# (pcpvt_small_v0's CPVTV2) at this width, its training network's checkpoint and its logits on ``x``.
SEED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "seed_ckpt")
SEED_CKPT = os.path.join(SEED_DIR, "twins_seed_tiny.ckpt")
SEED_TINY = dict(img_size=32, embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 3, 4), mlp_ratios=(4, 4, 2, 2),
                 depths=(2, 1, 1, 1), sr_ratios=(4, 2, 2, 1))
SEED_VARIANT = "twins_pcpvt_small_mindspore_seed"


def test_seed_code_checkpoint_gives_the_seed_codes_logits():
    data = np.load(os.path.join(SEED_DIR, "twins_seed_tiny.npz"))
    model = create_model(SEED_VARIANT, pretrained=SEED_CKPT, **SEED_TINY)
    model.set_train(False)
    np.testing.assert_allclose(model(ms.Tensor(data["x"])).asnumpy(), data["logits"], atol=1e-5, rtol=0)


def test_seed_checkpoint_is_recognised_by_its_names_and_its_training_state_dropped():
    ckpt = CheckpointFile(SEED_CKPT)  # the readme's training network: model.*, adam_m.*, adam_v.*, global_step ...
    assert ckpt.seed is twins_mod.SEED_FORMAT
    model = create_model(SEED_VARIANT, num_classes=5, **SEED_TINY)
    assert {k: v.shape for k, v in ckpt.tensors.items()} == {p.name: tuple(p.shape) for p in model.get_parameters()}


def test_published_variant_refuses_a_seed_checkpoint_in_one_line():
    with pytest.raises(CheckpointError, match=f"Twins Ascend readme.*load it into {SEED_VARIANT}"):
        create_model("twins_pcpvt_small", pretrained=SEED_CKPT, **SEED_TINY)


@pytest.mark.parametrize("size", ["small", "base", "large"])
def test_seed_variants_are_pcpvt_with_the_seed_codes_tanh_gelu(size):
    seed = create_model(f"twins_pcpvt_{size}_mindspore_seed", **SEED_TINY)
    published = create_model(f"twins_pcpvt_{size}", **SEED_TINY)
    assert [(p.name, p.shape) for p in seed.get_parameters()] == [(p.name, p.shape) for p in published.get_parameters()]
    assert isinstance(seed.blocks[0][0].mlp.act, GELUTanh) and not isinstance(published.blocks[0][0].mlp.act, GELUTanh)
    assert twins_mod.SEED_FORMAT.variant_for(f"pcpvt_{size}_v0") == f"twins_pcpvt_{size}_mindspore_seed"


def test_seed_variant_cfg_is_the_seed_codes_preprocessing_and_its_readme_accuracy():
    cfg = get_default_cfg(SEED_VARIANT)
    assert (cfg["crop_pct"], cfg["interpolation"]) == (0.875, "bicubic")  # twin_s.yaml
    assert (cfg["top1"], cfg["top5"]) == (81.35, 95.72)
