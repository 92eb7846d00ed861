"""Backbone use: ``features_only`` / ``out_indices`` / ``feature_info``, ``forward_intermediates`` and
``prune_intermediate_layers``, with timm's meaning (tiny widths; full size only for the timm parity tests)."""
import mindspore as ms
import numpy as np
import pytest

from mszoo.models import create_model, list_models
from mszoo.models.layers import feature_take_indices
from tests.parity import torch_and_timm
from tests.tiny import tiny_kwargs

# timm's default out_indices: Twins its four stages (4), TNT and ViTs the last three blocks (3)
DEFAULT_TAPS = {"twins": (0, 1, 2, 3), "tnt": (0, 1, 2), "t2t": (0, 1, 2)}
ONE_PER_FAMILY = ["twins_svt_small", "tnt_s_patch16_224", "t2t_vit_t_14"]


def _kwargs(name, **kw):
    """Tiny widths; three blocks for TNT / T2T-ViT, so the default (last three) taps exist."""
    kwargs = tiny_kwargs(name)
    if "depth" in kwargs:
        kwargs["depth"] = 3
    kwargs.update(kw)
    return kwargs


def _tiny(name, **kw):
    model = create_model(name, **_kwargs(name, **kw))
    model.set_train(False)
    return model


def _batch(h=32, w=32, batch=2, seed=1):
    return ms.Tensor(np.random.RandomState(seed).randn(batch, 3, h, w).astype(np.float32))


def _max_diff(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def _check_maps_match_feature_info(model, maps, hw):
    info = model.feature_info
    assert len(maps) == len(info) == len(model.out_indices)
    for fmap, chs, red in zip(maps, info.channels(), info.reduction()):
        assert fmap.shape == (2, chs, hw[0] // red, hw[1] // red)
        assert np.isfinite(fmap.asnumpy()).all()


# ------------------------------------------------------------------------------------------ every variant


@pytest.mark.parametrize("name", list_models())
def test_every_variant_builds_features_only_with_feature_info_matching_its_maps(name):
    model = _tiny(name, features_only=True)
    family = name.split("_")[0]
    assert model.out_indices == DEFAULT_TAPS[family]
    assert not [p.name for p in model.get_parameters() if p.name.startswith("head.")]
    _check_maps_match_feature_info(model, model(_batch()), (32, 32))


def test_feature_take_indices_follows_timm():
    from timm.models._features import feature_take_indices as timm_take
    for num, indices in [(4, None), (4, 4), (4, 1), (4, (0, 2)), (12, (-1, 3)), (12, [-3, -2, -1]), (7, 3)]:
        assert feature_take_indices(num, indices) == timm_take(num, indices)
    for num, indices in [(4, 5), (4, 0), (4, (4,)), (4, (-5,))]:
        with pytest.raises(ValueError):
            feature_take_indices(num, indices)


def test_out_indices_without_features_only_is_an_error():
    with pytest.raises(ValueError, match="features_only"):
        _tiny("twins_pcpvt_small", out_indices=(0, 1))


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_out_indices_choose_the_maps_negative_from_the_end_and_must_increase(name):
    full = _tiny(name)
    x = _batch()
    everything = full.forward_intermediates(x, intermediates_only=True)
    with pytest.raises(ValueError, match="increase"):
        _tiny(name, features_only=True, out_indices=(-1, 0))
    model = _tiny(name, features_only=True, out_indices=(0, -1))
    ms.load_param_into_net(model, {p.name: p for p in full.get_parameters() if not p.name.startswith("head.")},
                           strict_load=True)
    maps = model(x)
    assert model.out_indices == (0, len(everything) - 1)
    assert model.feature_info.channels() == [everything[0].shape[1], everything[-1].shape[1]]
    assert _max_diff(maps[0].asnumpy(), everything[0].asnumpy()) == 0
    assert _max_diff(maps[1].asnumpy(), everything[-1].asnumpy()) == 0


# ------------------------------------------------------------------------------------ forward_intermediates


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_forward_intermediates_ends_with_forward_features_and_norm_normalises_the_last_map(name):
    model = _tiny(name)
    x = _batch()
    final, maps = model.forward_intermediates(x)
    assert _max_diff(final.asnumpy(), model.forward_features(x).asnumpy()) == 0
    only = model.forward_intermediates(x, intermediates_only=True, stop_early=True)
    assert [_max_diff(a.asnumpy(), b.asnumpy()) for a, b in zip(maps, only)] == [0] * len(maps)
    normed = model.forward_intermediates(x, indices=1, norm=True, intermediates_only=True)[0]
    tokens = final.asnumpy()  # the normed final tokens: the last map with norm=True is them as a map
    if name.startswith("twins"):
        expected = tokens.reshape(2, 1, 1, -1).transpose(0, 3, 1, 2)
    else:
        expected = tokens[:, 1:].reshape(2, 2, 2, -1).transpose(0, 3, 1, 2)
    assert _max_diff(normed.asnumpy(), expected) < 1e-6
    assert _max_diff(normed.asnumpy(), maps[-1].asnumpy()) > 1e-3


@pytest.mark.parametrize("name", ["tnt_s_patch16_224", "t2t_vit_t_14"])
def test_token_models_give_nlc_tokens_and_the_class_token_on_request(name):
    model = _tiny(name)
    x = _batch()
    final = model.forward_features(x).asnumpy()
    model.norm = ms.nn.Identity()  # the raw last block's tokens, class token first
    tokens = model.forward_features(x).asnumpy()
    nlc = model.forward_intermediates(x, indices=1, output_fmt="NLC", intermediates_only=True)[0]
    assert _max_diff(nlc.asnumpy(), tokens[:, 1:]) == 0
    (fmap, prefix), = model.forward_intermediates(x, indices=1, return_prefix_tokens=True, intermediates_only=True)
    assert _max_diff(prefix.asnumpy(), tokens[:, :1]) == 0
    # row-major grid: token 1 + i * W + j is the map's pixel (i, j)
    assert _max_diff(fmap.asnumpy()[:, :, 1, 0], tokens[:, 1 + 2 * 1 + 0]) == 0
    assert final.shape == tokens.shape
    with pytest.raises(ValueError, match="output_fmt"):
        model.forward_intermediates(x, output_fmt="NHWC")


def test_twins_refuses_token_output_formats_as_timm():
    with pytest.raises(ValueError, match="output_fmt"):
        _tiny("twins_svt_small").forward_intermediates(_batch(), output_fmt="NLC")


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_prune_intermediate_layers_drops_later_blocks_the_head_and_keeps_the_maps(name):
    model = _tiny(name)
    x = _batch()
    before = model.forward_intermediates(x, indices=(0, 1), intermediates_only=True)
    n_params = len(list(model.get_parameters()))
    assert model.prune_intermediate_layers((0, 1)) == [0, 1]
    after = model.forward_intermediates(x, indices=(0, 1), intermediates_only=True)
    assert [_max_diff(a.asnumpy(), b.asnumpy()) for a, b in zip(before, after)] == [0, 0]
    names = [p.name for p in model.get_parameters()]
    assert len(names) < n_params and not [n for n in names if n.startswith(("head.", "blocks.2."))]
    assert model.num_classes == 0


# ------------------------------------------------------------------------------------ sizes, graph mode, weights


@pytest.mark.parametrize("hw", [(512, 512), (96, 160), (160, 96)])
def test_twins_features_at_other_input_sizes(hw):
    model = _tiny("twins_pcpvt_small", features_only=True, depths=(1, 1, 1, 1))
    _check_maps_match_feature_info(model, model(_batch(*hw)), hw)


def test_token_models_built_at_a_non_square_size_give_non_square_maps():
    for name in ("tnt_s_patch16_224", "t2t_vit_7"):
        model = _tiny(name, features_only=True, img_size=(32, 64))
        _check_maps_match_feature_info(model, model(_batch(32, 64)), (32, 64))


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_features_model_compiles_in_graph_mode_and_equals_pynative(name, pynative):
    model = _tiny(name, features_only=True)
    x = _batch(64, 96) if name.startswith("twins") else _batch()
    eager = model(x)
    ms.set_context(mode=ms.GRAPH_MODE)
    graph = model(x)
    assert len(graph) == len(eager)
    assert max(_max_diff(a.asnumpy(), b.asnumpy()) for a, b in zip(eager, graph)) < 1e-5


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_features_only_loads_a_classifier_checkpoint_and_drops_its_head(name, tmp_path):
    classifier = _tiny(name, num_classes=7)
    path = str(tmp_path / "classifier.ckpt")
    ms.save_checkpoint(classifier, path)
    model = _tiny(name, features_only=True, pretrained=path)
    x = _batch()
    expected = classifier.forward_intermediates(x, indices=model.out_indices, intermediates_only=True)
    assert max(_max_diff(a.asnumpy(), b.asnumpy()) for a, b in zip(model(x), expected)) == 0


def test_t2t_vit_features_from_a_checkpoint_of_another_size_use_the_sinusoid_table_of_their_own(tmp_path):
    """T2T-ViT's position table is fixed: a model built at another (here non-square) size than its checkpoint
    keeps the table of its own size, exactly as a model of that size holding the same learnt weights."""
    small = _tiny("t2t_vit_7", num_classes=3)
    path = str(tmp_path / "t2t.ckpt")
    ms.save_checkpoint(small, path)
    model = _tiny("t2t_vit_7", features_only=True, pretrained=path, img_size=(32, 64))
    same = _tiny("t2t_vit_7", num_classes=3, img_size=(32, 64))
    ms.load_param_into_net(same, {p.name: p for p in small.get_parameters() if p.name != "pos_embed"})
    x = _batch(32, 64)
    expected = same.forward_intermediates(x, indices=model.out_indices, intermediates_only=True)
    assert max(_max_diff(a.asnumpy(), b.asnumpy()) for a, b in zip(model(x), expected)) == 0
    assert model.model.pos_embed.shape[1] == 1 + 2 * 4


# ------------------------------------------------------------------------------------ parity with timm (full size)
# The maps before the final norm are the residual stream, of magnitude ~10-30 with these weights, where float32
# rounding alone differs by ~1e-6 of the magnitude between frameworks: the bound is 1e-5 of the larger of 1 and
# the map's largest value (1e-5 absolute for unit-scale maps; a wrong bias, scale or order gives >1e-3).
NOISE = 0.02


@pytest.fixture(scope="module")
def noisy_checkpoint(tmp_path_factory):
    """``arch -> (pth, ckpt)``: timm's ``arch`` with every weight moved away from its init (so a wrong bias, norm
    or scale shows), saved as ``.pth`` and converted to our ``.ckpt`` by the converter; made once per module."""
    from mszoo.models.convert import convert_file
    made = {}

    def get(arch):
        if arch not in made:
            torch, timm = torch_and_timm()
            torch.manual_seed(0)
            ref = timm.create_model(arch)
            with torch.no_grad():
                for p in ref.parameters():
                    p.add_(NOISE * torch.randn_like(p))
            folder = tmp_path_factory.mktemp(arch)
            made[arch] = str(folder / f"{arch}.pth"), str(folder / f"{arch}.ckpt")
            torch.save(ref.state_dict(), made[arch][0])
            convert_file(arch, *made[arch])
        return made[arch]
    return get


def _timm_model(arch, pth, **kw):
    _, timm = torch_and_timm()
    return timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(file=pth), **kw).eval()


def _flat(outputs):
    """Tensors of a (possibly nested: maps with prefix tokens) output, in order, as numpy arrays."""
    if isinstance(outputs, (list, tuple)):
        return [a for item in outputs for a in _flat(item)]
    return [outputs.asnumpy() if isinstance(outputs, ms.Tensor) else outputs.numpy()]


def _parity(ours, theirs):
    """``(max abs difference, bound)`` of two outputs of the same structure and shapes."""
    ours, theirs = _flat(ours), _flat(theirs)
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    diffs = [(_max_diff(a, b), 1e-5 * max(1.0, float(np.abs(b).max()))) for a, b in zip(ours, theirs)]
    return max(d for d, _ in diffs), all(d < bound for d, bound in diffs)


@pytest.mark.parametrize("arch, hw", [("twins_pcpvt_small", (224, 224)), ("twins_svt_small", (160, 288)),
                                      ("tnt_s_patch16_224", (224, 224)), ("tnt_s_patch16_224", (160, 256))])
def test_features_only_equals_timm(arch, hw, noisy_checkpoint):
    """At 224 and other sizes; TNT is built at the other size, its 224 position table resampled on load."""
    import torch
    pth, ckpt = noisy_checkpoint(arch)
    size = dict(img_size=hw) if arch.startswith("tnt") and hw != (224, 224) else {}
    ref = _timm_model(arch, pth, features_only=True, **size)
    ours = create_model(arch, features_only=True, pretrained=ckpt, **size)
    ours.set_train(False)
    x = np.random.RandomState(2).randn(1, 3, *hw).astype(np.float32)
    assert ours.out_indices == tuple(ref.feature_info.out_indices)
    assert ours.feature_info.channels() == ref.feature_info.channels()
    assert ours.feature_info.reduction() == ref.feature_info.reduction()
    with torch.no_grad():
        diff, ok = _parity(ours(ms.Tensor(x)), ref(torch.from_numpy(x)))
    print(f"{arch} {hw} features_only max abs diff vs timm: {diff:.2e}")
    assert ok


@pytest.mark.parametrize("arch, hw, kw", [
    ("twins_svt_small", (160, 288), dict(indices=(1, -1), norm=True)),
    ("tnt_s_patch16_224", (224, 224), dict(indices=2, norm=True, return_prefix_tokens=True)),
    ("tnt_s_patch16_224", (224, 224), dict(indices=(0, 5), output_fmt="NLC")),
])
def test_forward_intermediates_equals_timm(arch, hw, kw, noisy_checkpoint):
    import torch
    pth, ckpt = noisy_checkpoint(arch)
    ref = _timm_model(arch, pth)
    ours = create_model(arch, pretrained=ckpt)
    ours.set_train(False)
    x = np.random.RandomState(3).randn(1, 3, *hw).astype(np.float32)
    with torch.no_grad():
        diff, ok = _parity(ours.forward_intermediates(ms.Tensor(x), **kw),
                           ref.forward_intermediates(torch.from_numpy(x), **kw))
    print(f"{arch} {hw} {kw} forward_intermediates max abs diff vs timm: {diff:.2e}")
    assert ok


# ------------------------------------------------------------------------------------ export


def test_features_model_exports_to_onnx_and_mindir_with_one_output_per_map(tmp_path):
    """Through the exporter's ONNX (dynamic batch) and MINDIR functions; a features model has no classifier
    record, so the sidecar writer (export_to_file) is not used."""
    import types

    import onnxruntime as ort

    from mszoo.deploy.export import export_mindir, export_onnx
    from mszoo.models.layers import set_exportable
    model = _tiny("twins_svt_small", features_only=True)
    cfg = types.SimpleNamespace(in_chans=3, image_size=64)
    set_exportable(model, True)
    try:
        onnx_path = export_onnx(model, cfg, str(tmp_path / "features.onnx"))
    finally:
        set_exportable(model, False)
    mindir_path = export_mindir(model, cfg, str(tmp_path / "features.mindir"))
    x = np.random.RandomState(0).randn(3, 3, 64, 64).astype(np.float32)  # another batch than exported
    expected = [m.asnumpy() for m in model(ms.Tensor(x))]
    session = ort.InferenceSession(onnx_path)
    onnx_maps = session.run(None, {session.get_inputs()[0].name: x})
    mindir_maps = ms.nn.GraphCell(ms.load(mindir_path))(ms.Tensor(x))
    assert len(onnx_maps) == len(mindir_maps) == len(expected) == 4
    assert max(_max_diff(a, b) for a, b in zip(onnx_maps, expected)) < 1e-4
    assert max(_max_diff(a.asnumpy(), b) for a, b in zip(mindir_maps, expected)) < 1e-4


@pytest.mark.parametrize("case", ["performer", "transformer"])
def test_t2t_vit_maps_are_the_official_block_outputs_without_the_class_token(case, tmp_path):
    """The official code has no feature API: its blocks' outputs (tests/fixtures/t2t_vit/
    make_official_block_outputs.py) are the reference, and the rule (patch tokens of the chosen blocks, class token
    dropped, row-major on the token grid) is applied to them here."""
    import json
    import os

    import safetensors.numpy as safetensors_numpy

    from mszoo.models.convert import convert_state_dict, read_torch_checkpoint
    from mszoo.models.layers import FeatureGetterNet
    from tests.models.test_t2t_vit import official_state_dict, parity_input
    with open(os.path.join(os.path.dirname(__file__), "..", "fixtures", "t2t_vit", "official_block_outputs.json"),
              encoding="utf-8") as f:
        fx = json.load(f)[case]
    src = str(tmp_path / "official.safetensors")
    safetensors_numpy.save_file(official_state_dict(fx["spec"], fx["seed"]), src)
    kwargs = {k: v for k, v in fx["model_kwargs"].items() if k != "tokens_type"}
    model, _ = convert_state_dict(fx["arch"], read_torch_checkpoint(src), **kwargs)
    model.set_train(False)
    backbone = FeatureGetterNet(model, out_indices=3)  # the default: the last three, here all three blocks
    size = fx["input_size"]
    maps = backbone(ms.Tensor(parity_input(2, size)))
    blocks = [np.asarray(b, np.float32) for b in fx["blocks"]]
    grid = size // 16
    expected = [b[:, 1:].reshape(2, grid, grid, -1).transpose(0, 3, 1, 2) for b in blocks]
    diff = max(_max_diff(m.asnumpy(), e) for m, e in zip(maps, expected))
    print(f"t2t_vit {case} block maps max abs diff vs official: {diff:.2e}")
    assert len(maps) == 3 and diff < 1e-5
