"""The one loading rule (mszoo/models/loading.py) and ``create_model(pretrained=...)`` for every family."""
import logging

import mindspore as ms
import numpy as np
import pytest

from mszoo.models import create_model, resolve_data_config
from mszoo.models.loading import CheckpointError, CheckpointFile, load_pretrained, load_weights
from mszoo.models.record import RECORD_KEY, make_record, record_to_text
from tests.tiny import tiny_kwargs

FAMILIES = ["twins_svt_small", "tnt_s_patch16_224", "t2t_vit_t_14"]


def tiny(name, num_classes=5):
    return create_model(name, num_classes=num_classes, **tiny_kwargs(name))


def weights_of(model):
    return {p.name: p.asnumpy().copy() for p in model.get_parameters()}


def save(path, params, record=None, extra=None):
    """A MindSpore checkpoint of ``params`` (name -> ndarray), with a model record when given."""
    entries = [{"name": k, "data": ms.Tensor(v)} for k, v in {**params, **(extra or {})}.items()]
    ms.save_checkpoint(entries, str(path), append_dict={RECORD_KEY: record_to_text(record)} if record else None)
    return str(path)


def record_for(name, num_classes=5):
    kwargs = tiny_kwargs(name)
    pre = resolve_data_config(name, {"image_size": kwargs.pop("img_size")})
    return make_record(name, num_classes, pre["image_size"], pre["crop_pct"], pre["interpolation"], pre["mean"],
                       pre["std"], model_kwargs=kwargs)


def logits(model, size=32):
    model.set_train(False)
    x = ms.Tensor(np.random.RandomState(0).rand(2, 3, size, size).astype(np.float32))
    return model(x).asnumpy()


# ----------------------------------------------------------------------------------------- load_weights

def test_load_weights_refuses_a_weight_the_model_does_not_have():
    model = tiny("twins_svt_small")
    params = dict(weights_of(model), **{"blocks.99.extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match=r"unexpected blocks\.99\.extra\.weight"):
        load_weights(model, params, source="x.ckpt")


def test_load_weights_names_missing_and_mis_shaped_parameters():
    model = tiny("twins_svt_small")
    params = weights_of(model)
    del params["norm.weight"]
    params["norm.bias"] = np.zeros(7, np.float32)
    with pytest.raises(CheckpointError) as err:
        load_weights(model, params, source="x.ckpt")
    msg = str(err.value)
    assert msg.startswith("x.ckpt does not fit the model:") and "\n" not in msg
    assert "missing norm.weight" in msg and "shape mismatch norm.bias (7,) vs model (64,)" in msg


def test_a_head_of_another_size_is_an_error_unless_re_heading_for_fine_tuning():
    source = weights_of(tiny("twins_svt_small", num_classes=37))
    model = tiny("twins_svt_small", num_classes=5)
    with pytest.raises(CheckpointError, match=r"shape mismatch head\.bias \(37,\) vs model \(5,\)"):
        load_weights(model, source)
    fresh_head = model.head.weight.asnumpy().copy()
    replaced = load_weights(model, source, allow_rehead=True)
    assert replaced == ["head.bias", "head.weight"]
    np.testing.assert_array_equal(model.head.weight.asnumpy(), fresh_head)  # left at its fresh init
    np.testing.assert_array_equal(model.norm.weight.asnumpy(), source["norm.weight"])
    # re-heading never excuses a body parameter
    source["norm.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match="norm.weight"):
        load_weights(model, source, allow_rehead=True)


def test_values_really_load_and_training_state_entries_are_skipped():
    src_model, model = tiny("twins_svt_small"), tiny("twins_svt_small")
    params = weights_of(src_model)
    params.update({"optimizer.step": np.zeros(1, np.float32), "loss_scale.scale": np.ones(1, np.float32)})
    assert load_weights(model, params) == []
    np.testing.assert_array_equal(logits(model), logits(src_model))


def test_a_training_checkpoint_loads_its_complete_ema_copy(tmp_path):
    plain, ema = weights_of(tiny("twins_svt_small")), weights_of(tiny("twins_svt_small"))
    path = save(tmp_path / "t.ckpt", plain, extra={f"ema.{k}": v for k, v in ema.items()})
    model = tiny("twins_svt_small")
    assert load_pretrained(model, path) == ([], "EMA weights")
    np.testing.assert_array_equal(model.norm.weight.asnumpy(), ema["norm.weight"])


def test_a_unique_wrapper_prefix_is_removed(tmp_path):
    params = weights_of(tiny("twins_svt_small"))
    path = save(tmp_path / "w.ckpt", {f"network.{k}": v for k, v in params.items()})
    model = tiny("twins_svt_small")
    load_pretrained(model, path)
    np.testing.assert_array_equal(model.norm.weight.asnumpy(), params["norm.weight"])


def test_an_unreadable_checkpoint_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match=r"^cannot read checkpoint .*bad\.ckpt"):
        CheckpointFile(str(bad))


# ---------------------------------------------------------------------------------- create_model(pretrained)

@pytest.mark.parametrize("name", FAMILIES)
def test_create_model_pretrained_means_the_same_for_every_family(name, tmp_path):
    """A self-describing checkpoint rebuilds its own model (classes and widths from its record); a ``pretrained``
    that names nothing and another arch's checkpoint are refused the same way by all three families."""
    trained = tiny(name, num_classes=5)
    path = save(tmp_path / "m.ckpt", weights_of(trained), record_for(name))
    model = create_model(name, pretrained=path)
    assert model.num_classes == 5
    np.testing.assert_array_equal(logits(model), logits(trained))
    with pytest.raises(ValueError, match=r"pretrained must be True, 'timm', a Hub id .* not 3"):
        create_model(name, pretrained=3)
    other = next(f for f in FAMILIES if f != name)
    with pytest.raises(CheckpointError, match=rf"^arch: '{name}' \(given to create_model\) contradicts "
                                              rf".*o\.ckpt, which holds a {other} model; create the model it holds"):
        create_model(name, pretrained=save(tmp_path / "o.ckpt", {}, record_for(other)))


def test_the_variant_function_loads_pretrained_like_create_model(tmp_path):
    from mszoo.models.twins import twins_svt_small

    trained = tiny("twins_svt_small")
    path = save(tmp_path / "m.ckpt", weights_of(trained), record_for("twins_svt_small"))
    np.testing.assert_array_equal(logits(twins_svt_small(pretrained=path)), logits(trained))


def test_create_model_without_a_record_takes_num_classes_from_the_head(tmp_path):
    path = save(tmp_path / "m.ckpt", weights_of(tiny("twins_svt_small", num_classes=37)))
    assert create_model("twins_svt_small", pretrained=path, **tiny_kwargs("twins_svt_small")).num_classes == 37


def test_create_model_with_another_num_classes_re_heads_and_says_so(tmp_path):
    trained = tiny("twins_svt_small", num_classes=5)
    path = save(tmp_path / "m.ckpt", weights_of(trained), record_for("twins_svt_small"))
    logger, handler, messages = logging.getLogger("mszoo"), logging.Handler(logging.INFO), []
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        model = create_model("twins_svt_small", num_classes=3, pretrained=path)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert model.num_classes == 3
    assert any("new 3-class head for fine-tuning (re-initialised: head.bias, head.weight)" in m for m in messages)
    np.testing.assert_array_equal(model.norm.weight.asnumpy(), trained.norm.weight.asnumpy())


def test_create_model_refuses_widths_that_contradict_the_weights(tmp_path):
    path = save(tmp_path / "m.ckpt", weights_of(tiny("twins_svt_small")), record_for("twins_svt_small"))
    with pytest.raises(CheckpointError, match=r"^model_kwargs: embed_dims=\[8, 16, 24, 32\] \(given to create_model\) "
                                              r"contradicts .*m\.ckpt, which holds embed_dims=\[16, 32, 48, 64\]"):
        create_model("twins_svt_small", pretrained=path, embed_dims=(8, 16, 24, 32))
