"""Train / eval transforms and random erasing against timm and torchvision."""
import random

import numpy as np
import pytest
import timm.data as timm_data
import torch
from PIL import Image

from mszoo.data.random_erasing import RandomErasing
from mszoo.data.transforms import (
    CenterCrop,
    ColorJitter,
    RandomResizedCrop,
    ResizeShorter,
    ToNormalizedArray,
    create_transform,
)
from tests.data.helpers import random_rgb


def _to_numpy(t):
    return t.numpy() if hasattr(t, "numpy") else np.asarray(t)


@pytest.mark.parametrize("size,crop_pct,image_size", [((300, 250), 0.875, 224), ((250, 301), 0.9, 224),
                                                      ((61, 47), 0.875, 32), ((40, 90), 1.0, 32),
                                                      ((20, 20), 0.95, 32)])
def test_eval_transform_matches_timm(size, crop_pct, image_size):
    img = random_rgb(h=size[1], w=size[0], seed=1)
    theirs = timm_data.create_transform(image_size, is_training=False, crop_pct=crop_pct, interpolation="bicubic")
    mine = create_transform(image_size, is_training=False, crop_pct=crop_pct, interpolation="bicubic")
    a, b = _to_numpy(theirs(img)), mine(img)
    assert b.shape == (3, image_size, image_size) and b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)


def test_eval_transform_bilinear_matches_timm():
    img = random_rgb(h=70, w=90, seed=2)
    theirs = timm_data.create_transform(48, is_training=False, crop_pct=0.9, interpolation="bilinear")
    mine = create_transform(48, is_training=False, crop_pct=0.9, interpolation="bilinear")
    np.testing.assert_allclose(mine(img), _to_numpy(theirs(img)), atol=1e-5)


def test_eval_resize_uses_floor_of_size_over_crop_pct():
    resize = create_transform(224, is_training=False, crop_pct=0.9).transforms[0]
    assert isinstance(resize, ResizeShorter) and resize.size == 248  # floor(224 / 0.9)
    out = resize(random_rgb(h=100, w=150, seed=0))
    assert out.size == (372, 248)  # long side int(248 * 150 / 100)
    assert CenterCrop(224)(out).size == (224, 224)


@pytest.mark.parametrize("auto_augment", [None, "rand-m9-mstd0.5-inc1", "original", "augmix-m3-w3"])
@pytest.mark.parametrize("interpolation", ["bicubic", "random"])
def test_seeded_train_transform_matches_timm(auto_augment, interpolation):
    """RandomResizedCrop + policy + normalise + random erasing ('const') draw the same numbers as timm.

    Flip and colour jitter are off: torchvision draws those from torch's generator, not Python's.
    """
    kw = dict(hflip=0.0, color_jitter=None if auto_augment is None else 0.4, auto_augment=auto_augment,
              interpolation=interpolation, re_prob=0.5, re_mode="const", re_count=2)
    theirs = timm_data.create_transform(32, is_training=True, scale=(0.25, 1.0), **kw)
    mine = create_transform(32, is_training=True, min_crop=0.25, **kw)
    for k in range(8):
        img = random_rgb(h=45, w=37, seed=k)
        random.seed(k)
        np.random.seed(k)
        a = _to_numpy(theirs(img))
        random.seed(k)
        np.random.seed(k)
        b = mine(img)
        assert b.shape == (3, 32, 32) and b.dtype == np.float32
        np.testing.assert_allclose(b, a, atol=1e-5)


def test_train_transform_structure_follows_timm():
    names = lambda t: [type(x).__name__ for x in t.transforms]  # noqa: E731
    no_aa = create_transform(32, is_training=True, auto_augment=None, re_prob=0.25)
    assert names(no_aa) == ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "ToNormalizedArray",
                            "RandomErasing"]
    ra = create_transform(32, is_training=True, auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.0)
    assert names(ra) == ["RandomResizedCrop", "RandomHorizontalFlip", "RandAugment", "ToNormalizedArray"]
    three_a = create_transform(32, is_training=True, auto_augment="3a")
    assert "ColorJitter" in names(three_a)  # timm keeps colour jitter with 3-Augment


def test_random_resized_crop_params_match_timm():
    from timm.data.transforms import RandomResizedCropAndInterpolation

    for k, size in enumerate([(50, 40), (40, 200), (300, 30)]):
        img = random_rgb(h=size[1], w=size[0], seed=k)
        for seed in range(20):
            random.seed(seed)
            theirs = RandomResizedCropAndInterpolation.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
            random.seed(seed)
            mine = RandomResizedCrop.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
            assert mine == theirs


def test_random_resized_crop_falls_back_to_center_crop():
    img = random_rgb(h=10, w=400, seed=0)  # no 3/4..4/3 box of >= 90% area fits
    random.seed(0)
    top, left, h, w = RandomResizedCrop.get_params(img, (0.9, 1.0), (3 / 4, 4 / 3))
    assert (h, w) == (10, 13) and top == 0 and left == (400 - 13) // 2


def test_hflip_probability_and_effect():
    from mszoo.data.transforms import RandomHorizontalFlip

    img = random_rgb(seed=1)
    random.seed(0)
    flips = sum(np.array_equal(np.asarray(RandomHorizontalFlip(0.5)(img)), np.asarray(img)[:, ::-1])
                for _ in range(400))
    assert 160 < flips < 240


@pytest.mark.parametrize("kind,factor", [(0, 0.6), (1, 1.4), (2, 0.3)])
def test_color_jitter_components_match_torchvision(kind, factor, monkeypatch):
    import torchvision.transforms.functional as F

    img = random_rgb(seed=6)
    reference = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation][kind](img, factor)
    strengths = [0.0, 0.0, 0.0]
    strengths[kind] = 0.5
    jitter = ColorJitter(*strengths)
    monkeypatch.setattr(random, "uniform", lambda lo, hi: factor)
    np.testing.assert_array_equal(np.asarray(jitter(img)), np.asarray(reference))


def test_color_jitter_hue_matches_torchvision():
    import torchvision.transforms.functional as F

    img = random_rgb(seed=7)
    for shift in (-0.3, 0.1):
        np.testing.assert_array_equal(np.asarray(ColorJitter.adjust_hue(img, shift)),
                                      np.asarray(F.adjust_hue(img, shift)))


def test_normalisation_matches_torchvision():
    import torchvision.transforms as T

    img = random_rgb(seed=8)
    ref = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(T.ToTensor()(img)).numpy()
    np.testing.assert_allclose(ToNormalizedArray()(img), ref, atol=1e-6)


def test_normalisation_by_table_gives_the_bits_of_the_per_pixel_formula():
    img = random_rgb(seed=9)
    mean, std = np.float32([0.485, 0.456, 0.406]), np.float32([0.229, 0.224, 0.225])
    x = np.asarray(img).transpose(2, 0, 1).astype(np.float32)
    direct = (x / np.float32(255.0) - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_array_equal(ToNormalizedArray()(img), direct)
    grey = np.asarray(img.convert("L")).astype(np.float32)[None] / np.float32(255.0)
    np.testing.assert_array_equal(ToNormalizedArray()(img.convert("L")),  # one channel broadcasts to three
                                  (grey - mean[:, None, None]) / std[:, None, None])
    with pytest.raises(ValueError, match="2-channel mean"):
        ToNormalizedArray(mean=(0.5, 0.5), std=(0.5, 0.5))(img)


def test_the_train_transform_writes_into_a_given_array_and_erasing_keeps_it_there():
    """A training worker hands each image's slot of the batch array to the transform: the normalisation writes
    there and random erasing (after it) erases there, so no image is copied into the batch."""
    img = random_rgb(h=90, w=120, seed=3)
    tf = create_transform(32, is_training=True, auto_augment="rand-m9-mstd0.5-inc1", re_prob=1.0, re_mode="pixel")
    assert tf.writes_into

    def draw(**kw):
        random.seed(5)
        np.random.seed(5)
        return tf(img, **kw)

    expected = draw()
    batch = np.full((2, 3, 32, 32), np.nan, np.float32)
    result = draw(out=batch[1])
    assert result.base is batch or np.shares_memory(result, batch[1])
    np.testing.assert_array_equal(batch[1], expected)
    assert np.isnan(batch[0]).all()


def test_random_erasing_boxes_match_timm_const_mode():
    from timm.data.random_erasing import RandomErasing as TimmRE

    for seed in range(10):
        x = np.random.RandomState(seed).standard_normal((3, 24, 20)).astype(np.float32)
        theirs = TimmRE(0.7, mode="const", max_count=3, device="cpu")
        mine = RandomErasing(0.7, mode="const", max_count=3)
        random.seed(seed)
        a = theirs(torch.from_numpy(x.copy())).numpy()
        random.seed(seed)
        b = mine(x.copy())
        np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("mode", ["const", "rand", "pixel"])
def test_random_erasing_modes(mode):
    random.seed(0)
    np.random.seed(0)
    x = np.full((3, 40, 40), 5.0, np.float32)
    out = RandomErasing(1.0, mode=mode)(x)
    erased = out != 5.0
    assert erased.any() and erased.all(axis=0).sum() == erased.any(axis=0).sum()  # same box in every channel
    box = out[:, erased[0]]
    if mode == "const":
        assert np.all(box == 0)
    elif mode == "rand":
        assert np.all(box == box[:, :1]) and not np.all(box == 0)  # one colour per channel
    else:
        assert np.unique(box).size > box.shape[1]  # per-pixel noise


def test_random_erasing_probability_and_batch():
    random.seed(1)
    np.random.seed(1)
    batch = np.ones((200, 3, 16, 16), np.float32)
    RandomErasing(0.25, mode="const")(batch)
    erased = (batch == 0).any(axis=(1, 2, 3)).mean()
    assert 0.15 < erased < 0.35
    with pytest.raises(ValueError):
        RandomErasing(0.5, mode="noise")


def test_train_transform_outputs_normalised_chw_float32_for_every_mode_of_input():
    t = create_transform(16, is_training=True, auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.5, re_mode="pixel")
    for seed in range(5):
        out = t(random_rgb(h=30, w=25, seed=seed))
        assert out.shape == (3, 16, 16) and out.dtype == np.float32 and np.isfinite(out).all()


def test_interpolation_name_is_checked():
    with pytest.raises(ValueError, match="interpolation"):
        create_transform(16, is_training=False, interpolation="cubic")
    img = Image.new("RGB", (30, 20))
    assert create_transform(16, is_training=False, interpolation="random")(img).shape == (3, 16, 16)
