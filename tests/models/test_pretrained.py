"""One route for pretrained weights (mszoo/models/pretrained.py): the one merge and the one load, the same from
``create_model``, the scripts (mszoo/resolve.py) and the PyTorch converter; the checkpoint filter is found through
the variant's registration."""
import sys

import mindspore as ms
import numpy as np
import pytest

from mszoo.config import ConfigError, parse_config
from mszoo.models import checkpoint_filter, create_model, list_models, register_model, registry
from mszoo.models.convert import convert_file, convert_state_dict
from mszoo.models.loading import CheckpointFile
from mszoo.models.pretrained import ArgumentConflict
from mszoo.resolve import build_model, load_eval_model, resolve_from_checkpoint
from tests.tiny import tiny_kwargs

NAME = "twins_svt_small"  # the Twins keys are the same on the PyTorch side: a model's weights are a state dict


def tiny_state_dict(num_classes=5):
    model = create_model(NAME, num_classes=num_classes, **tiny_kwargs(NAME))
    return model, {p.name: p.asnumpy().copy() for p in model.get_parameters()}


def logits(model):
    model.set_train(False)
    x = ms.Tensor(np.random.RandomState(0).rand(2, 3, 32, 32).astype(np.float32))
    return model(x).asnumpy()


def converted(tmp_path, num_classes=5):
    from safetensors.numpy import save_file

    source, weights = tiny_state_dict(num_classes)
    save_file(weights, str(tmp_path / "w.safetensors"))
    info = convert_file(NAME, str(tmp_path / "w.safetensors"), str(tmp_path / "w.ckpt"), **tiny_kwargs(NAME))
    return source, info["output"]


def test_the_converter_writes_a_checkpoint_that_loads_through_the_same_route(tmp_path):
    source, path = converted(tmp_path)
    # the library: the record gives the model, the one load its weights
    model = create_model(NAME, pretrained=path)
    assert model.num_classes == 5
    np.testing.assert_array_equal(logits(model), logits(source))
    # the scripts: the same merge completes the config, the same load fills the model
    cfg = parse_config(["--pretrained", path])[0]
    resolve_from_checkpoint(cfg, CheckpointFile(path))
    assert (cfg.arch, cfg.num_classes, cfg.image_size) == (NAME, 5, 32)
    scripted, which = load_eval_model(cfg, CheckpointFile(path))
    assert which == "weights"
    np.testing.assert_array_equal(logits(scripted), logits(source))


def test_the_one_merge_refuses_the_same_contradiction_from_the_library_and_the_scripts(tmp_path):
    _, path = converted(tmp_path)
    with pytest.raises(ArgumentConflict) as library:
        create_model(NAME, pretrained=path, depths=(2, 1, 1, 1))
    cfg = parse_config(["--pretrained", path, "--model_kwargs", "{depths: [2, 1, 1, 1]}"])[0]
    with pytest.raises(ConfigError) as scripts:
        resolve_from_checkpoint(cfg, CheckpointFile(path))
    for err, origin in ((library, "given to create_model"), (scripts, "from command line")):
        assert str(err.value).startswith(f"model_kwargs: depths=[2, 1, 1, 1] ({origin}) contradicts {path}, which "
                                         "holds depths=[1, 1, 1, 1]; drop the depths ")
        assert "\n" not in str(err.value)
    # agreeing explicit arguments are fine, from both sides
    assert create_model(NAME, pretrained=path, num_classes=5, depths=(1, 1, 1, 1)).num_classes == 5
    cfg = parse_config(["--pretrained", path, "--num_classes", "5", "--model_kwargs", "{depths: [1, 1, 1, 1]}"])[0]
    resolve_from_checkpoint(cfg, CheckpointFile(path))
    assert build_model(cfg, training=False).num_classes == 5


@pytest.mark.parametrize("name", list_models())
def test_every_variant_is_registered_with_its_familys_checkpoint_filter(name):
    family = sys.modules[registry._model_entrypoints[name].__module__]
    assert checkpoint_filter(name) is family.checkpoint_filter_fn


def test_the_converter_and_create_model_find_the_filter_through_the_registration(tmp_path, monkeypatch):
    _, weights = tiny_state_dict()
    calls = []
    registered = checkpoint_filter(NAME)

    def recording(state_dict, model):
        calls.append(sorted(state_dict) == sorted(weights))
        return registered(state_dict, model)

    monkeypatch.setitem(registry._checkpoint_filters, NAME, recording)
    convert_state_dict(NAME, weights, **tiny_kwargs(NAME))
    assert calls == [True]
    _, path = converted(tmp_path)
    create_model(NAME, pretrained=path, img_size=48)  # another size: the filter adapts the weights on loading
    assert len(calls) == 3 and calls[2] is True


def test_a_variant_registered_without_a_filter_cannot_map_pytorch_weights(monkeypatch):
    monkeypatch.setattr(registry, "_model_entrypoints", dict(registry._model_entrypoints))  # restored afterwards
    monkeypatch.setattr(registry, "_model_default_cfgs", dict(registry._model_default_cfgs))

    @register_model
    def no_filter_variant(pretrained=None, **kwargs):  # pragma: no cover - never built
        raise AssertionError

    with pytest.raises(ValueError, match=r"^no_filter_variant was registered without a checkpoint filter"):
        checkpoint_filter("no_filter_variant")
