"""Augmentation ops and policy strings against timm's (same pixels, same parsed ops)."""
import random

import numpy as np
import pytest
import timm.data.auto_augment as timm_aa
from PIL import Image

from mszoo.data import auto_augment as ours
from tests.data.helpers import random_rgb

HPARAMS = dict(translate_const=9, img_mean=(124, 116, 104), interpolation=Image.Resampling.BICUBIC)
OP_NAMES = sorted(ours.OPS)


def _pixels(img):
    return np.asarray(img).astype(np.int32)


def test_op_set_matches_timm():
    assert set(OP_NAMES) == set(timm_aa.NAME_TO_OP)


@pytest.mark.parametrize("name", OP_NAMES)
@pytest.mark.parametrize("magnitude", [0, 4, 9, 10])
def test_op_gives_timm_pixels(name, magnitude):
    img = random_rgb(seed=3)
    theirs_op = timm_aa.AugmentOp(name, prob=1.0, magnitude=magnitude, hparams=dict(HPARAMS))
    ours_op = ours.AugmentOp(name, prob=1.0, magnitude=magnitude, hparams=dict(HPARAMS))
    for sign_seed in (1, 2):  # seeds 1 and 2 give both signs for the ops with a random sign
        random.seed(sign_seed)
        theirs = _pixels(theirs_op(img))
        random.seed(sign_seed)
        mine = _pixels(ours_op(img))
        assert mine.shape == theirs.shape
        assert np.abs(mine - theirs).max() == 0, f"{name} m={magnitude}"


@pytest.mark.parametrize("name", ["Rotate", "ShearX", "TranslateYRel", "SolarizeAdd", "PosterizeIncreasing"])
def test_op_changes_pixels(name):
    """Guard against a test that compares two no-ops."""
    img = random_rgb(seed=4)
    random.seed(0)
    out = ours.AugmentOp(name, prob=1.0, magnitude=9, hparams=dict(HPARAMS))(img)
    assert np.abs(_pixels(out) - _pixels(img)).max() > 0


def test_op_on_grayscale_matches_timm():
    img = random_rgb(seed=5).convert("L")
    hparams = dict(HPARAMS, img_mean=128)  # a grey image needs a single fill value
    for name in ("SolarizeAdd", "Equalize", "Rotate", "Posterize", "Contrast"):
        random.seed(0)
        theirs = _pixels(timm_aa.AugmentOp(name, 1.0, 7, dict(hparams))(img))
        random.seed(0)
        mine = _pixels(ours.AugmentOp(name, 1.0, 7, dict(hparams))(img))
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("name,magnitude,expected", [
    ("Rotate", 9, (27.0,)), ("Solarize", 5, (128,)), ("SolarizeIncreasing", 5, (128,)), ("Posterize", 9, (3,)),
    ("PosterizeIncreasing", 9, (1,)), ("PosterizeOriginal", 9, (7,)), ("SolarizeAdd", 10, (110,)),
    ("Color", 5, (1.0,)), ("Desaturate", 10, (1.0,)), ("GaussianBlur", 0, (0.1,)),
])
def test_level_arguments(name, magnitude, expected):
    random.seed(1)  # first draw 0.134 -> no sign flip
    args = ours.AugmentOp(name, 1.0, magnitude, dict(HPARAMS)).level_args(magnitude)
    np.testing.assert_allclose(args, expected, rtol=1e-12)


def _ops_signature(ops):
    return [(op.name, op.prob, op.magnitude, op.magnitude_std, op.magnitude_max) for op in ops]


RAND_STRINGS = ["rand-m9-mstd0.5-inc1", "rand-m7-n3-mstd1", "rand-m9-mstd0.5", "rand-m10-n4-p0.7",
                "rand-m9-mstd101-mmax15", "rand-m6-t3a", "rand-tweights", "rand-m8-inc1-t3aw", "rand"]


@pytest.mark.parametrize("policy", RAND_STRINGS)
def test_rand_policy_parsing_matches_timm(policy):
    theirs = timm_aa.rand_augment_transform(policy, dict(HPARAMS))
    mine = ours.rand_augment_transform(policy, dict(HPARAMS))
    assert _ops_signature(mine.ops) == _ops_signature(theirs.ops)
    assert mine.num_layers == theirs.num_layers
    if theirs.choice_weights is None:
        assert mine.choice_weights is None
    else:
        np.testing.assert_allclose(mine.choice_weights, theirs.choice_weights)


@pytest.mark.parametrize("policy", ["original", "originalr", "v0", "v0r", "3a", "v0-mstd0.5", "original-mstd1"])
def test_auto_augment_policy_parsing_matches_timm(policy):
    theirs = timm_aa.auto_augment_transform(policy, dict(HPARAMS))
    mine = ours.auto_augment_transform(policy, dict(HPARAMS))
    assert [_ops_signature(sub) for sub in mine.policy] == [_ops_signature(sub) for sub in theirs.policy]


@pytest.mark.parametrize("policy", ["augmix-m3-w3", "augmix-m5-w4-d2", "augmix-m3-mstd0.5-a0.5-b1"])
def test_augmix_parsing_matches_timm(policy):
    theirs = timm_aa.augment_and_mix_transform(policy, dict(HPARAMS))
    mine = ours.augment_and_mix_transform(policy, dict(HPARAMS))
    assert _ops_signature(mine.ops) == _ops_signature(theirs.ops)
    assert (mine.alpha, mine.width, mine.depth, mine.blended) == (theirs.alpha, theirs.width, theirs.depth,
                                                                  theirs.blended)


def test_parsed_settings_of_the_common_policies():
    ra = ours.rand_augment_transform("rand-m9-mstd0.5-inc1", dict(HPARAMS))
    assert ra.num_layers == 2 and len(ra.ops) == 15
    assert {op.magnitude for op in ra.ops} == {9} and {op.prob for op in ra.ops} == {0.5}
    assert {op.magnitude_std for op in ra.ops} == {0.5}
    assert "PosterizeIncreasing" in [op.name for op in ra.ops]
    ra3 = ours.rand_augment_transform("rand-m7-n3-mstd1", dict(HPARAMS))
    assert ra3.num_layers == 3 and "Posterize" in [op.name for op in ra3.ops]
    mix = ours.augment_and_mix_transform("augmix-m3-w3", dict(HPARAMS))
    assert mix.width == 3 and {op.magnitude_std for op in mix.ops} == {float("inf")}


@pytest.mark.parametrize("bad", ["rand-m9-q3", "augmix-z2", "v0-m3", "nosuchpolicy"])
def test_bad_policy_strings_are_rejected(bad):
    with pytest.raises(ValueError):
        ours.create_auto_augment(bad, image_size=32)


@pytest.mark.parametrize("policy", ["rand-m9-mstd0.5-inc1", "rand-m7-n3-mstd1", "original", "v0r", "3a",
                                    "augmix-m3-w3", "augmix-m3-w2-b1"])
@pytest.mark.parametrize("interpolation", ["bicubic", "random"])
def test_seeded_policy_matches_timm_end_to_end(policy, interpolation):
    """Same seeds for `random` and `numpy.random` -> the same op choices, magnitudes and pixels as timm."""
    def build(module):
        hp = dict(translate_const=int(24 * 0.45), img_mean=(124, 116, 104))
        if interpolation != "random":
            hp["interpolation"] = Image.Resampling.BICUBIC
        if policy.startswith("rand"):
            return module.rand_augment_transform(policy, hp)
        if policy.startswith("augmix"):
            hp["translate_pct"] = 0.3
            return module.augment_and_mix_transform(policy, hp)
        return module.auto_augment_transform(policy, hp)

    theirs_t, mine_t = build(timm_aa), build(ours)
    changed = 0
    for k in range(12):
        img = random_rgb(seed=10 + k)
        random.seed(k)
        np.random.seed(k)
        theirs = _pixels(theirs_t(img))
        random.seed(k)
        np.random.seed(k)
        mine = _pixels(mine_t(img))
        np.testing.assert_array_equal(mine, theirs)
        changed += int(np.abs(mine - _pixels(img)).max() > 0)
    assert changed >= 6


def test_create_auto_augment_hparams_follow_timm_train_transform():
    aug = ours.create_auto_augment("rand-m9-mstd0.5-inc1", image_size=224, interpolation="bilinear")
    op = aug.ops[0]
    assert op.hparams["translate_const"] == 100
    assert op.fill == (124, 116, 104)
    assert op.resample == Image.Resampling.BILINEAR
    assert ours.create_auto_augment("augmix-m3-w3", image_size=32).ops[0].hparams["translate_pct"] == 0.3
    first = ours.create_auto_augment("original", 32, interpolation="random").policy[0][0]
    assert first.resample == (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)
    assert ours.create_auto_augment("", 32) is None
