"""TNT (Transformer in Transformer): parity with timm, checkpoint conversion, checkpoints of the readme's code
and behaviour."""
import os

import mindspore as ms
import numpy as np
import pytest

from mszoo.models import create_model, get_default_cfg, list_models
from mszoo.models import tnt as tnt_mod
from mszoo.models.convert import convert_state_dict
from mszoo.models.layers import DropPath, GELUTanh, resample_abs_pos_embed_np
from mszoo.models.loading import CheckpointError, CheckpointFile
from tests.parity import fixed_batch, torch_and_timm, torch_state_dict_numpy

TNT_VARIANTS = ["tnt_s_legacy_patch16_224", "tnt_s_patch16_224", "tnt_b_patch16_224"]


TINY = dict(embed_dim=32, inner_dim=8, depth=2, num_heads_outer=2, num_heads_inner=2, img_size=32, num_classes=5)
LAYOUTS = ["tnt_s_patch16_224", "tnt_s_legacy_patch16_224"]


def _tiny(arch="tnt_s_patch16_224", **kw):
    return create_model(arch, **dict(TINY, **kw))


def _batch(size=32, batch=2, seed=1):
    return ms.Tensor(fixed_batch(batch, size, seed))


# ---------------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("arch", TNT_VARIANTS)
def test_default_cfg_is_timms_eval_preprocessing(arch):
    _, timm = torch_and_timm()
    ref = timm.models.get_pretrained_cfg(arch)
    cfg = get_default_cfg(arch)
    assert cfg["input_size"] == tuple(ref.input_size) == (3, 224, 224)
    assert cfg["crop_pct"] == ref.crop_pct == 0.9
    assert cfg["interpolation"] == ref.interpolation == "bicubic"
    assert cfg["mean"] == tuple(ref.mean) == (0.5, 0.5, 0.5)
    assert cfg["std"] == tuple(ref.std) == (0.5, 0.5, 0.5)


# ------------------------------------------------------------------------------------------ conversion


@pytest.mark.parametrize("old, new", [((14, 14), (10, 10)), ((14, 14), (16, 16)), ((14, 14), (12, 20)),
                                      ((7, 7), (24, 24)), ((14, 14), (3, 5))])
def test_patch_pos_resampling_matches_timm_resample_abs_pos_embed(old, new):
    torch, _ = torch_and_timm()
    from timm.layers import resample_abs_pos_embed

    posemb = np.random.RandomState(0).randn(1, 1 + old[0] * old[1], 16).astype(np.float32)
    ref = resample_abs_pos_embed(torch.from_numpy(posemb), new_size=list(new), num_prefix_tokens=1).numpy()
    ours = resample_abs_pos_embed_np(posemb, new, num_prefix_tokens=1)
    assert ours.shape == ref.shape == (1, 1 + new[0] * new[1], 16)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours[:, :1], posemb[:, :1])
    assert np.abs(ours - ref).max() < 1e-4


@pytest.mark.parametrize("arch, img_size", [("tnt_s_patch16_224", 160), ("tnt_s_legacy_patch16_224", 256)])
def test_conversion_to_other_img_size_matches_timm_filter(arch, img_size):
    """timm weights at 224 converted for another img_size = timm's model at that size + timm's filter."""
    torch, timm = torch_and_timm()
    from timm.models.tnt import checkpoint_filter_fn as timm_filter

    torch.manual_seed(0)
    kw = dict(depth=2)
    src = timm.create_model(arch, **kw)
    state = src.state_dict()
    ref = timm.create_model(arch, img_size=img_size, **kw).eval()
    ref.load_state_dict(timm_filter(dict(state), ref), strict=True)
    ours, dropped = convert_state_dict(arch, {k: v.numpy() for k, v in state.items()}, img_size=img_size, **kw)
    assert not dropped
    assert tuple(ours.patch_pos.shape) == tuple(ref.patch_pos.shape) == (1, (img_size // 16) ** 2 + 1, 384)
    np.testing.assert_allclose(ours.patch_pos.asnumpy(), ref.patch_pos.detach().numpy(), atol=1e-5, rtol=0)
    ours.set_train(False)
    x = fixed_batch(1, img_size, seed=3)
    with torch.no_grad():
        ref_out = ref(torch.from_numpy(x)).numpy()
    our_out = ours(ms.Tensor(x)).asnumpy()
    assert np.abs(ref_out - our_out).max() < 1e-4


# official TNT names (huawei-noah tnt_pytorch) for each timm name, used to build an "official" checkpoint
_TO_OFFICIAL = {"norm_in": "inner_norm1", "attn_in": "inner_attn", "norm_mlp_in": "inner_norm2",
                "mlp_in": "inner_mlp", "norm_out": "outer_norm1", "attn_out": "outer_attn",
                "norm_mlp": "outer_norm2", "mlp": "outer_mlp", "norm1_proj": "proj_norm1",
                "norm2_proj": "proj_norm2", "pixel_embed": "patch_embed", "patch_pos": "outer_pos",
                "pixel_pos": "inner_pos"}


@pytest.mark.parametrize("arch", LAYOUTS)
def test_official_key_names_are_mapped_like_timm(arch):
    torch, timm = torch_and_timm()
    from timm.models.tnt import checkpoint_filter_fn as timm_filter

    kw = {k: v for k, v in TINY.items() if k != "num_classes"}
    torch.manual_seed(0)
    ref = timm.create_model(arch, num_classes=5, **kw)
    timm_sd = torch_state_dict_numpy(ref)
    legacy = "legacy" in arch
    official = {"outer_tokens": np.zeros((1, 1, 32), np.float32)}
    for key, value in timm_sd.items():
        if key == "pixel_pos" and not legacy:  # official layout: (1, pixels, inner_dim)
            value = value.reshape(1, value.shape[1], -1).transpose(0, 2, 1).copy()
        official[".".join(_TO_OFFICIAL.get(part, part) for part in key.split("."))] = value
    assert "patch_pos" not in official and "outer_pos" in official and "blocks.0.outer_mlp.fc1.weight" in official

    ours_model = _tiny(arch)
    ours = tnt_mod.checkpoint_filter_fn(official, ours_model)
    theirs = {k: v.numpy() for k, v in timm_filter({k: torch.from_numpy(v) for k, v in official.items()},
                                                   ref).items()}
    assert set(ours) == set(theirs) == set(timm_sd) == {p.name for p in ours_model.get_parameters()}
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
        np.testing.assert_array_equal(ours[key], timm_sd[key], err_msg=key)


def test_timm_state_dict_passes_filter_unchanged():
    model = _tiny()
    sd = {p.name: p.asnumpy() for p in model.get_parameters()}
    out = tnt_mod.checkpoint_filter_fn(dict(sd), model)
    assert set(out) == set(sd)
    for key in sd:
        np.testing.assert_array_equal(out[key], sd[key])


def test_patch_cutting_equals_torch_unfold():
    torch, _ = torch_and_timm()
    x = np.random.RandomState(0).randn(2, 3, 35, 50).astype(np.float32)  # not multiples: remainder dropped
    ref = torch.nn.functional.unfold(torch.from_numpy(x), kernel_size=(16, 8), stride=(16, 8))
    ref = ref.transpose(1, 2).reshape(-1, 3, 16, 8).numpy()
    ours = tnt_mod.unfold_patches(ms.Tensor(x), 16, 8).asnumpy()
    np.testing.assert_array_equal(ours, ref)


# ------------------------------------------------------------------------------------------- behaviour


def test_non_square_img_size_runs_with_grid_read_from_input():
    model = _tiny(img_size=(32, 48))
    model.set_train(False)
    assert tuple(model.patch_pos.shape) == (1, 2 * 3 + 1, 32)
    x = ms.Tensor(np.random.RandomState(0).randn(1, 3, 32, 48).astype(np.float32))
    assert model(x).shape == (1, 5)
    with pytest.raises(ValueError, match="patch_pos"):
        model(_batch(size=64))


def test_drop_path_rates_follow_timm_linear_rule():
    model = _tiny(depth=3, drop_path_rate=0.3)
    rates = [blk.drop_path.drop_prob if isinstance(blk.drop_path, DropPath) else 0.0 for blk in model.blocks]
    np.testing.assert_allclose(rates, [0.0, 0.15, 0.3])


def test_pooling_is_the_class_token_or_the_mean_of_the_patch_tokens():
    model = _tiny()
    model.set_train(False)
    x = _batch()
    model.reset_classifier(0)
    token = model(x).asnumpy()
    model.reset_classifier(0, global_pool="avg")
    feats = model.forward_features(x)
    np.testing.assert_allclose(model(x).asnumpy(), feats.asnumpy()[:, 1:].mean(axis=1), atol=1e-6, rtol=0)
    np.testing.assert_allclose(token, feats.asnumpy()[:, 0], atol=1e-6, rtol=0)


def test_forward_head_pre_logits_returns_class_token_features():
    model = _tiny()
    model.set_train(False)
    feats = model.forward_features(_batch())
    assert feats.shape == (2, 2 * 2 + 1, 32)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 32)


def test_no_weight_decay_names_position_embeddings_and_class_token():
    model = _tiny()
    nwd = model.no_weight_decay()
    assert nwd == {"patch_pos", "pixel_pos", "cls_token"}
    assert nwd <= {p.name for p in model.get_parameters()}


@pytest.mark.parametrize("arch", LAYOUTS)
def test_tiny_model_exports_to_onnx_without_im2col(arch, tmp_path):
    import onnx
    import onnxruntime as ort

    from mszoo.models.layers import set_exportable

    model = _tiny(arch)
    model.set_train(False)
    x = _batch()
    expected = model(x).asnumpy()
    set_exportable(model)
    path = str(tmp_path / "tnt")
    ms.export(model, x, file_name=path, file_format="ONNX")
    ops_used = {node.op_type for node in onnx.load(path + ".onnx").graph.node}
    assert "Conv" in ops_used and not ops_used & {"Im2Col", "Col2Im", "Unfold"}
    sess = ort.InferenceSession(path + ".onnx", providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.asnumpy()})[0]
    assert np.abs(got - expected).max() < 1e-4


# ------------------------------------------------------------------- checkpoints of the readme's own code

# tests/fixtures/seed_ckpt/make_tnt_seed.py: the MindSpore model zoo's TNT code (research/cv/TNT) at this width,
# its training network's checkpoint and its logits on ``x``.
SEED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "seed_ckpt")
SEED_CKPT = os.path.join(SEED_DIR, "tnt_seed_tiny.ckpt")
SEED_TINY = dict(img_size=32, embed_dim=16, inner_dim=8, depth=2, num_heads_outer=2)
SEED_VARIANT = "tnt_s_patch16_224_mindspore_seed"


def _seed_fixture():
    data = np.load(os.path.join(SEED_DIR, "tnt_seed_tiny.npz"))
    return data["x"], data["logits"]


def test_seed_code_checkpoint_gives_the_seed_codes_logits():
    x, expected = _seed_fixture()
    model = create_model(SEED_VARIANT, pretrained=SEED_CKPT, **SEED_TINY)
    model.set_train(False)
    np.testing.assert_allclose(model(ms.Tensor(x)).asnumpy(), expected, atol=1e-5, rtol=0)


def test_seed_checkpoint_is_recognised_by_its_names_and_its_training_state_dropped():
    ckpt = CheckpointFile(SEED_CKPT)  # the readme's training network: model.*, adam_m.*, adam_v.*, global_step ...
    assert ckpt.seed is tnt_mod.SEED_FORMAT and ckpt.record is None
    model = create_model(SEED_VARIANT, num_classes=5, **SEED_TINY)
    assert {k: v.shape for k, v in ckpt.tensors.items()} == {p.name: tuple(p.shape) for p in model.get_parameters()}


def test_published_variant_refuses_a_seed_checkpoint_in_one_line():
    with pytest.raises(CheckpointError, match=f"research/cv/TNT.*load it into {SEED_VARIANT}") as err:
        create_model("tnt_s_patch16_224", pretrained=SEED_CKPT, **SEED_TINY)
    assert "\n" not in str(err.value)


def test_seed_checkpoint_with_an_entry_its_model_lacks_is_refused_naming_it(tmp_path):
    entries = [{"name": k, "data": v} for k, v in ms.load_checkpoint(SEED_CKPT).items()]
    entries.append({"name": "model.blocks.0.extra.weight", "data": ms.Tensor(np.ones((2, 2), np.float32))})
    path = str(tmp_path / "seed_plus.ckpt")
    ms.save_checkpoint(entries, path)
    with pytest.raises(CheckpointError, match=r"unexpected blocks\.0\.extra\.weight"):
        create_model(SEED_VARIANT, pretrained=path, **SEED_TINY)


def test_seed_variant_is_the_seed_codes_architecture():
    names = {p.name for p in create_model(SEED_VARIANT, **SEED_TINY).get_parameters()}
    published = {p.name for p in create_model("tnt_s_patch16_224", **SEED_TINY).get_parameters()}
    unbiased = ["pixel_embed.proj", "proj", "head", "blocks.1.attn_in.proj", "blocks.1.attn_out.proj",
                "blocks.1.mlp_in.fc2", "blocks.1.mlp.fc2"]
    assert {n + ".bias" for n in unbiased} <= published and published - names == {n + ".bias" for n in unbiased} | {
        "blocks.0." + n[len("blocks.1."):] + ".bias" for n in unbiased if n.startswith("blocks.1.")}
    model = create_model(SEED_VARIANT, **SEED_TINY)
    assert isinstance(model.blocks[0].mlp.act, GELUTanh)
    assert model.norm.eps == 1e-7 == model.blocks[0].norm_in.eps
    assert "blocks.0.attn_in.qk.weight" in {p.name for p in model.get_parameters()}  # q and k joined on loading


def test_seed_variant_cfg_is_the_seed_codes_preprocessing_and_its_readme_accuracy():
    cfg = get_default_cfg(SEED_VARIANT)
    assert (cfg["crop_pct"], cfg["interpolation"]) == (0.875, "bicubic")  # Resize(256/224 * size), bicubic
    assert cfg["mean"] == (0.485, 0.456, 0.406) and cfg["std"] == (0.229, 0.224, 0.225)
    assert (cfg["top1"], cfg["top5"]) == (81.47, 95.42)
    assert SEED_VARIANT not in list_models(pretrained=True)  # no published weights: it is not the paper's model


def test_seed_variant_has_the_seed_codes_parameter_count():
    # research/cv/TNT's TNT(outer_dim=384, inner_dim=24, depth=12, 6/4 heads, 1000 classes), counted with its code
    assert sum(p.size for p in create_model(SEED_VARIANT).get_parameters()) == 23_757_384
