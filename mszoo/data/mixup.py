"""Mixup (arXiv:1710.09412) and CutMix (arXiv:1905.04899) on numpy batches, with timm's semantics.

``Mixup(...)(images, labels)`` takes NCHW float32 images and integer labels and returns the mixed images and
float32 soft targets ``(N, num_classes)`` (label smoothing included). Sample ``i`` is mixed with sample
``N - 1 - i`` (the batch reversed). A cutmix box is clipped at the image border and lambda is corrected to the
area actually kept. All random draws come from ``numpy.random`` in the order timm uses.

In a ``mindspore.dataset`` pipeline, pass ``mixup.batch_map`` as ``per_batch_map``: it reads the epoch from the
pipeline's batch info, so mixing stops at ``mixup_off_epoch`` even when batches are prefetched.
"""
import numpy as np

__all__ = ["Mixup", "one_hot", "mixup_target", "rand_bbox", "rand_bbox_minmax", "cutmix_bbox_and_lam"]


def one_hot(labels, num_classes, on_value=1.0, off_value=0.0):
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    out = np.full((labels.size, num_classes), off_value, dtype=np.float32)
    out[np.arange(labels.size), labels] = on_value
    return out


def mixup_target(labels, num_classes, lam=1.0, smoothing=0.0):
    """Smoothed one-hot targets mixed with those of the reversed batch: ``y * lam + y[::-1] * (1 - lam)``.

    ``lam`` is a scalar or one value per sample (shape ``(N,)`` or ``(N, 1)``).
    """
    off = smoothing / num_classes
    y = one_hot(labels, num_classes, on_value=1.0 - smoothing + off, off_value=off)
    lam = np.asarray(lam, dtype=np.float32)
    if lam.ndim == 1:
        lam = lam[:, None]
    return (y * lam + y[::-1] * (np.float32(1.0) - lam)).astype(np.float32)


def rand_bbox(img_shape, lam, margin=0.0, count=None):
    """Box with side ``sqrt(1 - lam)`` of the image, centred uniformly at random, clipped to the image.

    Returns ``(y_low, y_high, x_low, x_high)``.
    """
    img_h, img_w = img_shape[-2:]
    cut = np.sqrt(1 - lam)
    cut_h, cut_w = int(img_h * cut), int(img_w * cut)
    margin_y, margin_x = int(margin * cut_h), int(margin * cut_w)
    cy = np.random.randint(margin_y, img_h - margin_y, size=count)
    cx = np.random.randint(margin_x, img_w - margin_x, size=count)
    y_low = np.clip(cy - cut_h // 2, 0, img_h)
    y_high = np.clip(cy + (cut_h + 1) // 2, 0, img_h)
    x_low = np.clip(cx - cut_w // 2, 0, img_w)
    x_high = np.clip(cx + (cut_w + 1) // 2, 0, img_w)
    return y_low, y_high, x_low, x_high


def rand_bbox_minmax(img_shape, minmax, count=None):
    """Box whose sides are uniform in ``[minmax[0], minmax[1])`` of the image sides, placed fully inside."""
    if len(minmax) != 2:
        raise ValueError(f"cutmix_minmax must be (min, max), got {minmax!r}")
    img_h, img_w = img_shape[-2:]
    cut_h = np.random.randint(int(img_h * minmax[0]), int(img_h * minmax[1]), size=count)
    cut_w = np.random.randint(int(img_w * minmax[0]), int(img_w * minmax[1]), size=count)
    y_low = np.random.randint(0, img_h - cut_h + 1, size=count)
    x_low = np.random.randint(0, img_w - cut_w + 1, size=count)
    return y_low, y_low + cut_h, x_low, x_low + cut_w


def cutmix_bbox_and_lam(img_shape, lam, ratio_minmax=None, correct_lam=True, count=None):
    """A cutmix box and the lambda it really gives (1 - box area / image area) when corrected."""
    if ratio_minmax is not None:
        box = rand_bbox_minmax(img_shape, ratio_minmax, count=count)
    else:
        box = rand_bbox(img_shape, lam, count=count)
    y_low, y_high, x_low, x_high = box
    if correct_lam or ratio_minmax is not None:
        lam = 1.0 - (y_high - y_low) * (x_high - x_low) / float(img_shape[-2] * img_shape[-1])
    return box, lam


class Mixup:
    """Mixup / CutMix for a batch, per batch, per pair or per element.

    Args:
        mixup_alpha: Beta(alpha, alpha) for mixup; mixup is on when > 0.
        cutmix_alpha: Beta(alpha, alpha) for cutmix; cutmix is on when > 0.
        cutmix_minmax: (min, max) box side ratios; when set, cutmix uses them instead of alpha.
        prob: probability of mixing a batch (or an element / pair).
        switch_prob: probability of cutmix rather than mixup when both are on.
        mode: ``batch`` (one lambda), ``pair`` (one per pair i, N-1-i) or ``elem`` (one per sample).
        correct_lam: correct the cutmix lambda to the clipped box area.
        label_smoothing: smoothing of the one-hot targets.
        num_classes: width of the targets.
        mixup_off_epoch: from this epoch on no mixing happens (targets stay smoothed one-hots); 0 = never.
        start_epoch: added to the pipeline's epoch counter in :meth:`batch_map` (for resumed runs).
    """

    def __init__(self, mixup_alpha=1.0, cutmix_alpha=0.0, cutmix_minmax=None, prob=1.0, switch_prob=0.5,
                 mode="batch", correct_lam=True, label_smoothing=0.1, num_classes=1000, mixup_off_epoch=0,
                 start_epoch=0):
        if mode not in ("batch", "pair", "elem"):
            raise ValueError(f"mixup mode must be batch, pair or elem, got {mode!r}")
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.cutmix_minmax = cutmix_minmax
        if cutmix_minmax is not None:
            if len(cutmix_minmax) != 2:
                raise ValueError(f"cutmix_minmax must be (min, max), got {cutmix_minmax!r}")
            self.cutmix_alpha = 1.0
        if self.mixup_alpha <= 0 and self.cutmix_alpha <= 0:
            raise ValueError("Mixup needs mixup_alpha > 0, cutmix_alpha > 0 or cutmix_minmax")
        self.mix_prob = prob
        self.switch_prob = switch_prob
        self.mode = mode
        self.correct_lam = correct_lam
        self.label_smoothing = label_smoothing
        self.num_classes = num_classes
        self.mixup_off_epoch = mixup_off_epoch
        self.start_epoch = start_epoch
        self.epoch = start_epoch
        self.mixup_enabled = True

    # ---------------------------------------------------------------- epoch control
    def set_epoch(self, epoch):
        """Tell the mixer the current epoch; mixing is off from ``mixup_off_epoch`` on."""
        self.epoch = int(epoch)
        self.mixup_enabled = self.active_at(self.epoch)

    def active_at(self, epoch):
        return not (self.mixup_off_epoch and epoch >= self.mixup_off_epoch)

    # ---------------------------------------------------------------- parameter draws
    def _draw_lam(self, size=None):
        """Lambda(s) and cutmix flag(s) for one batch (size None) or ``size`` elements, before the prob gate."""
        both = self.mixup_alpha > 0 and self.cutmix_alpha > 0
        if size is None:
            if both:
                use_cutmix = np.random.rand() < self.switch_prob
                alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
                return np.random.beta(alpha, alpha), use_cutmix
            use_cutmix = self.mixup_alpha <= 0
            alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
            return np.random.beta(alpha, alpha), use_cutmix
        if both:
            use_cutmix = np.random.rand(size) < self.switch_prob
            lam_cut = np.random.beta(self.cutmix_alpha, self.cutmix_alpha, size=size)
            lam_mix = np.random.beta(self.mixup_alpha, self.mixup_alpha, size=size)
            return np.where(use_cutmix, lam_cut, lam_mix), use_cutmix
        use_cutmix = np.full(size, self.mixup_alpha <= 0, dtype=bool)
        alpha = self.cutmix_alpha if self.mixup_alpha <= 0 else self.mixup_alpha
        return np.random.beta(alpha, alpha, size=size), use_cutmix

    def _params_per_elem(self, size, enabled):
        lam = np.ones(size, dtype=np.float32)
        use_cutmix = np.zeros(size, dtype=bool)
        if enabled:
            lam_mix, use_cutmix = self._draw_lam(size)
            lam = np.where(np.random.rand(size) < self.mix_prob, lam_mix.astype(np.float32), lam)
        return lam, use_cutmix

    def _params_per_batch(self, enabled):
        if enabled and np.random.rand() < self.mix_prob:
            lam, use_cutmix = self._draw_lam()
            return float(lam), bool(use_cutmix)
        return 1.0, False

    # ---------------------------------------------------------------- mixing
    def _cut(self, shape, lam):
        return cutmix_bbox_and_lam(shape, lam, ratio_minmax=self.cutmix_minmax, correct_lam=self.correct_lam)

    def _mix_per_sample(self, x, enabled, pairs):
        """``elem``: sample i mixes with its mirror n-1-i, one lam each. ``pair``: the first half draws the
        lams, and each mirror gets the same mix the other way round."""
        n = len(x)
        count = n // 2 if pairs else n
        lams, use_cutmix = self._params_per_elem(count, enabled)
        src = x.copy()
        for i in range(count):
            j = n - 1 - i
            if lams[i] == 1.0:
                continue
            targets = ((i, j), (j, i)) if pairs else ((i, j),)
            if use_cutmix[i]:
                (yl, yh, xl, xh), lams[i] = self._cut(x[i].shape, lams[i])
                for a, b in targets:
                    x[a][:, yl:yh, xl:xh] = src[b][:, yl:yh, xl:xh]
            else:
                for a, b in targets:
                    x[a] = x[a] * lams[i] + src[b] * (1 - lams[i])
        return np.concatenate((lams, lams[::-1])) if pairs else lams

    def _mix_batch(self, x, enabled):
        lam, use_cutmix = self._params_per_batch(enabled)
        if lam == 1.0:
            return 1.0
        if use_cutmix:
            (yl, yh, xl, xh), lam = self._cut(x.shape, lam)
            x[:, :, yl:yh, xl:xh] = x[::-1, :, yl:yh, xl:xh].copy()
        else:
            flipped = x[::-1] * (1.0 - lam)
            x *= lam
            x += flipped
        return lam

    def mix(self, x, labels, epoch=None):
        """Mix ``x`` (NCHW float, modified in place) and return ``(x, soft_targets)``.

        ``epoch`` (optional) overrides the epoch given to :meth:`set_epoch` for the on/off decision.
        """
        x = np.asarray(x)
        if len(x) % 2:
            raise ValueError(f"mixup/cutmix need an even batch size, got {len(x)}")
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"mixup expects float images, got {x.dtype}")
        enabled = self.mixup_enabled if epoch is None else self.active_at(epoch)
        if self.mode == "elem":
            lam = self._mix_per_sample(x, enabled, pairs=False)
        elif self.mode == "pair":
            lam = self._mix_per_sample(x, enabled, pairs=True)
        else:
            lam = self._mix_batch(x, enabled)
        return x, mixup_target(labels, self.num_classes, lam, self.label_smoothing)

    __call__ = mix

    def batch_map(self, images, labels, batch_info):
        """``per_batch_map`` for ``Dataset.batch``: lists of CHW images and labels -> (images, soft targets)."""
        epoch = max(self.epoch, self.start_epoch + batch_info.get_epoch_num())
        x = np.stack(images).astype(np.float32, copy=False)
        x, targets = self.mix(x, np.asarray(labels), epoch=epoch)
        return list(x), list(targets)

    def __repr__(self):
        return (f"Mixup(mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, prob={self.mix_prob}, "
                f"switch_prob={self.switch_prob}, mode={self.mode}, label_smoothing={self.label_smoothing}, "
                f"off_epoch={self.mixup_off_epoch})")
