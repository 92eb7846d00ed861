"""Mixup / CutMix on numpy batches: timm equivalence, label/pixel lambda agreement, switch_prob, off epoch."""
import numpy as np
import pytest
import timm.data.mixup as timm_mixup
import torch

from mszoo.data.mixup import Mixup, cutmix_bbox_and_lam, mixup_target, one_hot

NUM_CLASSES = 6


def _batch(n=8, size=12, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, 3, size, size)).astype(np.float32)
    y = rng.randint(0, NUM_CLASSES, n)
    return x, y


def _constant_batch(n=8, size=16):
    """Image i is constant i + 1, labels i % NUM_CLASSES: pixels reveal the mixing weights."""
    x = np.stack([np.full((3, size, size), i + 1.0, np.float32) for i in range(n)])
    return x, np.arange(n) % NUM_CLASSES


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("alphas", [(0.8, 1.0), (0.8, 0.0), (0.0, 1.0)])
@pytest.mark.parametrize("correct_lam", [True, False])
def test_matches_timm_with_same_seed(mode, alphas, correct_lam):
    kw = dict(mixup_alpha=alphas[0], cutmix_alpha=alphas[1], prob=0.9, switch_prob=0.5, mode=mode,
              correct_lam=correct_lam, label_smoothing=0.1, num_classes=NUM_CLASSES)
    theirs_fn, mine_fn = timm_mixup.Mixup(**kw), Mixup(**kw)
    for seed in range(6):
        x, y = _batch(seed=seed)
        np.random.seed(seed)
        tx, ty = theirs_fn(torch.from_numpy(x.copy()), torch.from_numpy(y))
        np.random.seed(seed)
        mx, my = mine_fn(x.copy(), y)
        assert mx.dtype == np.float32 and my.dtype == np.float32 and my.shape == (8, NUM_CLASSES)
        np.testing.assert_allclose(mx, tx.numpy(), atol=1e-6)
        np.testing.assert_allclose(my, ty.numpy(), atol=1e-6)


def test_cutmix_minmax_matches_timm():
    kw = dict(mixup_alpha=0.0, cutmix_alpha=0.0, cutmix_minmax=(0.2, 0.8), mode="elem", num_classes=NUM_CLASSES)
    x, y = _batch(seed=3)
    np.random.seed(3)
    tx, ty = timm_mixup.Mixup(**kw)(torch.from_numpy(x.copy()), torch.from_numpy(y))
    np.random.seed(3)
    mx, my = Mixup(**kw)(x.copy(), y)
    np.testing.assert_allclose(mx, tx.numpy(), atol=1e-6)
    np.testing.assert_allclose(my, ty.numpy(), atol=1e-6)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_labels_mix_with_the_pixel_lambda(mode):
    """Recover lambda from the pixels (mixup: the mixed value, cutmix: the kept area) and check the targets."""
    fn = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, mode=mode, label_smoothing=0.0,
               num_classes=NUM_CLASSES)
    np.random.seed(0)
    seen_cut = seen_mix = 0
    for _ in range(20):
        x, y = _constant_batch()
        n = len(x)
        mx, targets = fn(x, y)
        for i in range(n):
            j = n - 1 - i
            vals = np.unique(mx[i])
            own, other = i + 1.0, j + 1.0
            if vals.size == 1 and np.isclose(vals[0], own):
                lam = 1.0
            elif set(np.round(vals, 5)) <= {own, other}:  # cutmix: a box of the partner image
                lam = float(np.isclose(mx[i], own).mean())
                seen_cut += 1
            else:  # mixup: one blended value
                assert vals.size == 1
                lam = (vals[0] - other) / (own - other)
                seen_mix += 1
            expected = lam * one_hot([y[i]], NUM_CLASSES)[0] + (1 - lam) * one_hot([y[j]], NUM_CLASSES)[0]
            np.testing.assert_allclose(targets[i], expected, atol=1e-5)
    assert seen_cut > 0 and seen_mix > 0


def test_cutmix_lambda_is_corrected_by_clipped_box_area():
    np.random.seed(5)
    shape = (3, 20, 20)
    for lam in np.linspace(0.05, 0.95, 30):
        (yl, yh, xl, xh), corrected = cutmix_bbox_and_lam(shape, lam, correct_lam=True)
        assert 0 <= yl <= yh <= 20 and 0 <= xl <= xh <= 20
        assert corrected == pytest.approx(1 - (yh - yl) * (xh - xl) / 400)
    # a box centred in a corner is clipped: the corrected lambda is above the drawn one
    rng_state = np.random.get_state()
    clipped = 0
    for _ in range(50):
        (yl, yh, xl, xh), corrected = cutmix_bbox_and_lam(shape, 0.5, correct_lam=True)
        clipped += corrected > 0.5 + 1e-9
    np.random.set_state(rng_state)
    assert clipped > 0
    _, uncorrected = cutmix_bbox_and_lam(shape, 0.5, correct_lam=False)
    assert uncorrected == 0.5


def test_switch_prob_is_honoured_statistically():
    fn = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=0.3, mode="elem", num_classes=NUM_CLASSES)
    np.random.seed(0)
    lam, use_cutmix = fn._params_per_elem(20000, True)
    assert abs(use_cutmix.mean() - 0.3) < 0.015
    fn_batch = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=0.8, mode="batch", num_classes=NUM_CLASSES)
    cuts = sum(fn_batch._params_per_batch(True)[1] for _ in range(4000))
    assert abs(cuts / 4000 - 0.8) < 0.03


def test_mix_prob_is_honoured():
    fn = Mixup(mixup_alpha=1.0, prob=0.25, mode="batch", num_classes=NUM_CLASSES)
    np.random.seed(1)
    mixed = sum(fn._params_per_batch(True)[0] != 1.0 for _ in range(4000))
    assert abs(mixed / 4000 - 0.25) < 0.03


def test_mixing_stops_at_mixup_off_epoch():
    fn = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=NUM_CLASSES, mixup_off_epoch=3)
    x, y = _batch(seed=2)
    np.random.seed(0)
    fn.set_epoch(2)
    mixed, _ = fn(x.copy(), y)
    assert not np.allclose(mixed, x)
    fn.set_epoch(3)
    same, targets = fn(x.copy(), y)
    np.testing.assert_array_equal(same, x)
    np.testing.assert_allclose(targets, mixup_target(y, NUM_CLASSES, 1.0, 0.1))
    assert targets.max() == pytest.approx(0.9 + 0.1 / NUM_CLASSES)
    never_off = Mixup(mixup_alpha=1.0, num_classes=NUM_CLASSES, mixup_off_epoch=0)
    never_off.set_epoch(1000)
    assert never_off.mixup_enabled


def test_batch_map_reads_epoch_from_pipeline():
    class Info:
        def __init__(self, epoch):
            self.epoch = epoch

        def get_epoch_num(self):
            return self.epoch

    fn = Mixup(mixup_alpha=1.0, num_classes=NUM_CLASSES, mixup_off_epoch=2, start_epoch=1)
    x, y = _batch(seed=4)
    np.random.seed(0)
    images, targets = fn.batch_map(list(x), list(y), Info(0))  # epoch 1 (resumed at 1): mixing on
    assert not np.allclose(np.stack(images), x) and len(targets) == len(x)
    images, targets = fn.batch_map(list(x), list(y), Info(1))  # epoch 2: off
    np.testing.assert_array_equal(np.stack(images), x)


def test_odd_batch_is_refused():
    fn = Mixup(mixup_alpha=1.0, num_classes=NUM_CLASSES)
    x, y = _batch(n=7)
    with pytest.raises(ValueError, match="even"):
        fn(x, y)


def test_soft_targets_with_smoothing_sum_to_one():
    y = np.array([0, 5, 2, 2])
    t = mixup_target(y, NUM_CLASSES, lam=0.3, smoothing=0.2)
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-6)
    assert t.min() >= 0.2 / NUM_CLASSES - 1e-7
