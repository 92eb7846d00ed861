"""T2T-ViT: parity with the official yitu-opensource/T2T-ViT code, parameter counts, behaviour.

Parity without big files: ``official_state_dict`` fills the official model's state dict (names and
shapes stored in the fixture) deterministically; ``tests/fixtures/t2t_vit/make_official_logits.py``
loaded exactly these tensors into the official PyTorch model and stored its logits. Here the same
tensors are converted with our converter and our logits must match (max abs difference < 1e-4).
"""
import json
import math
import os

import mindspore as ms
import numpy as np
import pytest

import mszoo.models.t2t_vit as t2t_vit_module
from mszoo.models import create_model, get_default_cfg, list_models
from mszoo.models.convert import convert_state_dict, read_torch_checkpoint
from mszoo.models.t2t_vit import Block, T2TViT, TokenPerformer, checkpoint_filter_fn, sinusoid_encoding

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "t2t_vit", "official_logits.json")

# sum(p.numel() for p in model.parameters()) of the official models (yitu-opensource/T2T-ViT @ 0f63dc9,
# built as t2t_vit_X() with 1000 classes at 224): includes the fixed sinusoid table ``pos_embed`` and the
# performers' random features ``w`` (both nn.Parameter(requires_grad=False)).
OFFICIAL_PARAM_COUNTS = {
    "t2t_vit_7": 4_310_222,
    "t2t_vit_10": 5_889_230,
    "t2t_vit_12": 6_941_902,
    "t2t_vit_14": 21_545_550,
    "t2t_vit_19": 39_177_422,
    "t2t_vit_24": 64_105_934,
    "t2t_vit_t_14": 21_541_070,
    "t2t_vit_t_19": 39_172_942,
    "t2t_vit_t_24": 64_101_454,
}
# The same models counting only parameters with requires_grad=True (no pos_embed, no w).
OFFICIAL_TRAINABLE_COUNTS = {
    "t2t_vit_7": 4_255_694,
    "t2t_vit_10": 5_834_702,
    "t2t_vit_12": 6_887_374,
    "t2t_vit_14": 21_465_806,
    "t2t_vit_19": 39_085_070,
    "t2t_vit_24": 64_000_974,
    "t2t_vit_t_14": 21_465_422,
    "t2t_vit_t_19": 39_084_686,
    "t2t_vit_t_24": 64_000_590,
}

# (embed_dim, depth, num_heads, mlp_ratio) of the official variant functions.
OFFICIAL_HYPER_PARAMETERS = {
    "t2t_vit_7": (256, 7, 4, 2.0),
    "t2t_vit_10": (256, 10, 4, 2.0),
    "t2t_vit_12": (256, 12, 4, 2.0),
    "t2t_vit_14": (384, 14, 6, 3.0),
    "t2t_vit_19": (448, 19, 7, 3.0),
    "t2t_vit_24": (512, 24, 8, 3.0),
    "t2t_vit_t_14": (384, 14, 6, 3.0),
    "t2t_vit_t_19": (448, 19, 7, 3.0),
    "t2t_vit_t_24": (512, 24, 8, 3.0),
}

TINY = dict(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, token_dim=8, img_size=64, num_classes=10)


# ----------------------------------------------------------------------------------------------------------
# Deterministic weights (shared with the fixture generator)
# ----------------------------------------------------------------------------------------------------------
def sinusoid_reference(n_position, dim):
    """The T2T-ViT sinusoid table written from the formula, element by element."""
    table = np.zeros((n_position, dim), np.float64)
    for pos in range(n_position):
        for j in range(dim):
            angle = pos / 10000 ** (2 * (j // 2) / dim)
            table[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return table[None].astype(np.float32)


def official_state_dict(spec, seed):
    """Official-named state dict ``{name: float32 array}`` for ``spec = [(name, shape), ...]``.

    One ``RandomState(seed + i)`` per tensor, ``i`` its index in sorted-name order. Linear weights
    ``randn / sqrt(fan_in)`` (the performers' ``kqv`` 0.2x that, so that the random-feature attention
    stays well above its 1e-8 epsilon), LayerNorm weights ``1 + 0.1 randn``, biases ``0.05 randn``,
    other tensors (``cls_token``) ``0.5 randn``; ``pos_embed`` the sinusoid table; the performers' ``w``
    orthogonal rows scaled by ``sqrt(m)`` (the official recipe, from this seed).
    """
    out = {}
    for i, (key, shape) in enumerate(sorted((k, tuple(s)) for k, s in spec)):
        rs = np.random.RandomState(seed + i)
        if key == "pos_embed":
            value = sinusoid_reference(shape[1], shape[2])
        elif key.endswith(".w"):
            rows, cols = shape
            q, r = np.linalg.qr(rs.randn(cols, rows))
            value = (q * np.sign(np.diag(r))).T * math.sqrt(rows)
        elif "norm" in key and key.endswith("weight"):
            value = 1.0 + 0.1 * rs.randn(*shape)
        elif key.endswith("bias"):
            value = 0.05 * rs.randn(*shape)
        elif len(shape) == 2:
            value = rs.randn(*shape) * ((0.2 if ".kqv." in key else 1.0) / math.sqrt(shape[1]))
        else:
            value = 0.5 * rs.randn(*shape)
        out[key] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def parity_input(batch, size):
    return np.random.RandomState(0).randn(batch, 3, size, size).astype(np.float32)


def _load_fixture():
    with open(FIXTURE, encoding="utf-8") as f:
        return json.load(f)


def _count(params):
    return sum(int(np.prod(p.shape)) for p in params)


def _tiny(name="t2t_vit_7", **kw):
    args = dict(TINY)
    args.update(kw)
    model = create_model(name, **args)
    model.set_train(False)
    return model


def _skip_init(*args, **kwargs):
    return None


def _x(batch=2, size=64, seed=1):
    return ms.Tensor(np.random.RandomState(seed).randn(batch, 3, size, size).astype(np.float32))


# ----------------------------------------------------------------------------------------------------------
# Parity with the official code
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["t2t_vit_7", "t2t_vit_t_14", "t2t_vit_7_from224_at160"])
def test_logits_match_official_t2t_vit(case, tmp_path):
    import safetensors.numpy as safetensors_numpy
    fx = _load_fixture()[case]
    state_dict = official_state_dict(fx["spec"], fx["seed"])
    src = os.path.join(str(tmp_path), "official.safetensors")
    safetensors_numpy.save_file(state_dict, src)
    model, _ = convert_state_dict(fx["arch"], read_torch_checkpoint(src), img_size=fx["model_img_size"])
    model.set_train(False)
    logits = model(ms.Tensor(parity_input(2, fx["input_size"]))).asnumpy()
    expected = np.asarray(fx["logits"], np.float32)
    assert logits.shape == expected.shape
    diff = float(np.abs(logits - expected).max())
    print(f"{case}: max abs logit difference vs official {diff:.3g}")
    assert diff < 1e-4, f"{case}: max abs logit difference {diff:.3g} vs official"


def test_performer_random_features_survive_conversion_and_checkpoint(tmp_path):
    """The non-trainable ``w`` and ``pos_embed`` are written to and read back from .ckpt files."""
    model = _tiny()
    path = os.path.join(str(tmp_path), "tiny.ckpt")
    ms.save_checkpoint(model, path)
    saved = ms.load_checkpoint(path)
    for name in ("tokens_to_token.attention1.w", "tokens_to_token.attention2.w", "pos_embed"):
        assert name in saved
    other = _tiny()
    w_before = other.tokens_to_token.attention1.w.asnumpy().copy()
    other2 = create_model("t2t_vit_7", pretrained=path, **TINY)
    np.testing.assert_array_equal(other2.tokens_to_token.attention1.w.asnumpy(),
                                  model.tokens_to_token.attention1.w.asnumpy())
    assert not np.array_equal(w_before, model.tokens_to_token.attention1.w.asnumpy())


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAM_COUNTS))
def test_parameter_counts_and_hyper_parameters_equal_official(name, monkeypatch):
    # Weight init does not change counts or shapes; skipping it makes building 64M-parameter models cheap.
    monkeypatch.setattr(t2t_vit_module, "init_weights_vit", _skip_init)
    model = create_model(name)
    assert _count(model.get_parameters()) == OFFICIAL_PARAM_COUNTS[name]
    assert _count(model.trainable_params()) == OFFICIAL_TRAINABLE_COUNTS[name]
    dim, depth, heads, mlp_ratio = OFFICIAL_HYPER_PARAMETERS[name]
    assert (model.embed_dim, len(model.blocks), model.blocks[0].attn.num_heads) == (dim, depth, heads)
    assert model.blocks[0].mlp.fc1.weight.shape == (int(dim * mlp_ratio), dim)
    assert model.blocks[0].attn.attend.scale == pytest.approx((dim // heads) ** -0.5)
    performer = isinstance(model.tokens_to_token.attention1, TokenPerformer)
    assert performer == (not name.startswith("t2t_vit_t_"))
    assert model.tokens_to_token.project.weight.shape == (dim, 64 * 9)


def test_fixture_spec_has_official_names_and_our_converter_maps_every_key():
    fx = _load_fixture()["t2t_vit_7"]
    names = [k for k, _ in fx["spec"]]
    assert "tokens_to_token.attention1.mlp.0.weight" in names and "tokens_to_token.attention1.w" in names
    model = create_model("t2t_vit_7")
    mapped = checkpoint_filter_fn(official_state_dict(fx["spec"], fx["seed"]), model)
    own = {p.name: tuple(p.shape) for p in model.get_parameters()}
    assert {k: tuple(v.shape) for k, v in mapped.items()} == own


# ----------------------------------------------------------------------------------------------------------
# Model definition details
# ----------------------------------------------------------------------------------------------------------
def test_registered_variants_and_default_cfg():
    names = list_models("t2t_vit*")
    assert names == sorted(OFFICIAL_PARAM_COUNTS)
    cfg = get_default_cfg("t2t_vit_t_14")
    assert cfg["input_size"] == (3, 224, 224) and cfg["crop_pct"] == 0.9 and cfg["interpolation"] == "bicubic"
    assert cfg["mean"] == (0.485, 0.456, 0.406) and cfg["std"] == (0.229, 0.224, 0.225)
    assert get_default_cfg("T2t_vit_19") == get_default_cfg("t2t_vit_19")


def test_sinusoid_position_table_is_fixed_and_sized_for_img_size():
    np.testing.assert_allclose(sinusoid_encoding(50, 24), sinusoid_reference(50, 24), rtol=0, atol=1e-6)
    model = _tiny(img_size=96)  # 96 -> 24 -> 12 -> 6: 36 tokens + cls
    assert tuple(model.pos_embed.shape) == (1, 37, TINY["embed_dim"])
    assert not model.pos_embed.requires_grad
    np.testing.assert_allclose(model.pos_embed.asnumpy(), sinusoid_reference(37, TINY["embed_dim"]), atol=1e-6)
    # Not a multiple of 16: the grid follows the convolution arithmetic (70 -> 17 -> 9 -> 5).
    odd = _tiny(img_size=70)
    assert tuple(odd.pos_embed.shape) == (1, 26, TINY["embed_dim"])
    assert odd(_x(1, 70)).shape == (1, TINY["num_classes"])


def test_qk_scale_defaults_to_head_dim_and_can_be_overridden():
    model = _tiny()
    assert model.blocks[0].attn.attend.scale == pytest.approx((TINY["embed_dim"] // TINY["num_heads"]) ** -0.5)
    # The token transformer scales by its input width (3 * 7 * 7), as the official code.
    t_model = _tiny("t2t_vit_t_14")
    assert t_model.tokens_to_token.attention1.attn.attend.scale == pytest.approx(147 ** -0.5)
    scaled = _tiny(qk_scale=0.125)
    assert scaled.blocks[0].attn.attend.scale == 0.125


# ----------------------------------------------------------------------------------------------------------
# Behaviour with tiny models
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["t2t_vit_7", "t2t_vit_t_14"])
def test_tokens_are_the_class_token_and_one_per_16x16_patch_and_the_tables_are_not_trained(name):
    model = _tiny(name)
    feats = model.forward_features(_x())
    assert feats.shape == (2, 16 + 1, TINY["embed_dim"])  # 64 / 16 = 4 -> 4x4 patches
    trainable = {p.name for p in model.trainable_params()}
    fixed = {p.name for p in model.get_parameters()} - trainable
    assert "pos_embed" in fixed and "pos_embed" not in trainable
    assert (name == "t2t_vit_7") == any(n.endswith(".w") for n in fixed)  # the performers' random features


def test_classifies_from_the_class_token_only():
    model = _tiny()
    with pytest.raises(ValueError, match="class token"):
        model.reset_classifier(3, global_pool="avg")


def test_performer_dropout_is_active_only_in_training():
    ms.set_seed(0)
    layer = TokenPerformer(12, 8)  # drops with p=0.1 after proj and after the MLP (official, fixed)
    x = ms.Tensor(np.random.RandomState(0).randn(2, 5, 12).astype(np.float32))
    layer.set_train(False)
    np.testing.assert_array_equal(layer(x).asnumpy(), layer(x).asnumpy())
    layer.set_train(True)
    assert np.abs(layer(x).asnumpy() - layer(x).asnumpy()).max() > 1e-3


def test_no_weight_decay_names_existing_parameters():
    model = _tiny()
    nwd = model.no_weight_decay()
    assert nwd == {"cls_token"}
    assert nwd <= {p.name for p in model.trainable_params()}


def test_input_size_other_than_img_size_is_a_clear_error():
    model = _tiny(img_size=64)
    with pytest.raises(ValueError, match="img_size"):
        model(_x(1, 96))


def test_unknown_tokens_type_is_rejected():
    with pytest.raises(ValueError, match="tokens_type"):
        T2TViT(tokens_type="convolution", **TINY)


# ----------------------------------------------------------------------------------------------------------
# checkpoint_filter_fn
# ----------------------------------------------------------------------------------------------------------
def _official_like(model):
    """Our tiny model's weights under official names (the performer MLP as nn.Sequential indices)."""
    out = {}
    for p in model.get_parameters():
        key = p.name.replace(".mlp.fc1.", ".mlp.0.").replace(".mlp.fc2.", ".mlp.2.") if (
            p.name.startswith("tokens_to_token.")) else p.name
        out[key] = p.asnumpy()
    return out


def test_filter_renames_performer_mlp_and_keeps_everything_else():
    model = _tiny()
    sd = _official_like(model)
    assert "tokens_to_token.attention1.mlp.0.weight" in sd
    mapped = checkpoint_filter_fn(sd, model)
    own = {p.name: p.asnumpy() for p in model.get_parameters()}
    assert set(mapped) == set(own)
    for k, v in own.items():
        np.testing.assert_array_equal(mapped[k], v)


def test_filter_rebuilds_position_table_for_another_img_size_and_drops_missing_head():
    src = _tiny(img_size=64)
    sd = _official_like(src)
    target = _tiny(img_size=96, num_classes=0)
    mapped = checkpoint_filter_fn(sd, target)
    assert mapped["pos_embed"].shape == (1, 37, TINY["embed_dim"])
    np.testing.assert_allclose(mapped["pos_embed"], sinusoid_reference(37, TINY["embed_dim"]), atol=1e-6)
    assert not any(k.startswith("head.") for k in mapped)
    del sd["pos_embed"]  # official transfer learning may delete it: rebuilt too
    assert checkpoint_filter_fn(sd, src)["pos_embed"].shape == (1, 17, TINY["embed_dim"])


def test_block_matches_manual_computation():
    """One backbone block against a NumPy re-computation (pre-norm attention + MLP, exact GELU)."""
    block = Block(8, 2, mlp_ratio=2.0)
    block.set_train(False)
    x = np.random.RandomState(3).randn(1, 5, 8).astype(np.float32)
    out = block(ms.Tensor(x)).asnumpy()
    p = {n: v.asnumpy() for n, v in block.parameters_and_names()}

    def ln(t, w, b):
        mu = t.mean(-1, keepdims=True)
        var = ((t - mu) ** 2).mean(-1, keepdims=True)
        return (t - mu) / np.sqrt(var + 1e-5) * w + b

    h = ln(x, p["norm1.weight"], p["norm1.bias"])
    qkv = (h @ p["attn.qkv.weight"].T).reshape(1, 5, 3, 2, 4).transpose(2, 0, 3, 1, 4)
    att = qkv[0] @ qkv[1].transpose(0, 1, 3, 2) * 4 ** -0.5
    att = np.exp(att - att.max(-1, keepdims=True))
    att /= att.sum(-1, keepdims=True)
    a = (att @ qkv[2]).transpose(0, 2, 1, 3).reshape(1, 5, 8) @ p["attn.proj.weight"].T + p["attn.proj.bias"]
    x1 = x + a
    h = ln(x1, p["norm2.weight"], p["norm2.bias"]) @ p["mlp.fc1.weight"].T + p["mlp.fc1.bias"]
    erf = np.vectorize(math.erf)
    h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
    expected = x1 + h @ p["mlp.fc2.weight"].T + p["mlp.fc2.bias"]
    np.testing.assert_allclose(out, expected, atol=1e-5)
