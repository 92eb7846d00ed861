"""Random erasing (Zhong et al., arXiv:1708.04896) on normalised CHW float arrays, with timm's semantics.

Applied after normalisation: ``const`` fills the box with 0 (the mean colour), ``rand`` with one standard-normal
colour per box, ``pixel`` with standard-normal noise per pixel. Box placement draws from Python's ``random`` in the
same order as timm's ``RandomErasing``; the fill noise comes from ``numpy.random``.
"""
import math
import random

import numpy as np

__all__ = ["RandomErasing"]


class RandomErasing:
    """Erase up to ``max_count`` boxes from an image with probability ``probability``.

    Args:
        probability: chance that an image is erased at all.
        min_area, max_area: box area as a fraction of the image (divided by the number of boxes).
        min_aspect, max_aspect: box aspect-ratio range (log-uniform); ``max_aspect`` defaults to 1 / min_aspect.
        mode: ``const`` | ``rand`` | ``pixel``.
        min_count, max_count: number of boxes per erased image, uniform in [min_count, max_count].
        num_splits: for a batch, leave the first ``batch // num_splits`` images untouched (augmentation splits).
    """

    def __init__(self, probability=0.5, min_area=0.02, max_area=1 / 3, min_aspect=0.3, max_aspect=None,
                 mode="const", min_count=1, max_count=None, num_splits=0):
        mode = (mode or "const").lower()
        if mode not in ("const", "rand", "pixel"):
            raise ValueError(f"random erasing mode must be const, rand or pixel, got {mode!r}")
        self.probability = probability
        self.min_area = min_area
        self.max_area = max_area
        self.log_aspect = (math.log(min_aspect), math.log(max_aspect or 1 / min_aspect))
        self.min_count = min_count
        self.max_count = max_count or min_count
        self.num_splits = num_splits
        self.mode = mode

    def _fill(self, chans, h, w, dtype):
        if self.mode == "pixel":
            return np.random.standard_normal((chans, h, w)).astype(dtype)
        if self.mode == "rand":
            return np.random.standard_normal((chans, 1, 1)).astype(dtype)
        return np.zeros((chans, 1, 1), dtype=dtype)

    def _erase(self, img):
        """Erase boxes in one CHW array, in place."""
        if random.random() > self.probability:
            return
        chans, img_h, img_w = img.shape
        count = self.min_count
        if self.min_count != self.max_count:
            count = random.randint(self.min_count, self.max_count)
        area = img_h * img_w
        for _ in range(count):
            for _attempt in range(10):
                target = random.uniform(self.min_area, self.max_area) * area / count
                aspect = math.exp(random.uniform(*self.log_aspect))
                h = int(round(math.sqrt(target * aspect)))
                w = int(round(math.sqrt(target / aspect)))
                if w < img_w and h < img_h:
                    top = random.randint(0, img_h - h)
                    left = random.randint(0, img_w - w)
                    img[:, top:top + h, left:left + w] = self._fill(chans, h, w, img.dtype)
                    break

    def __call__(self, x):
        """Erase in place and return ``x`` (CHW image or NCHW batch)."""
        if x.ndim == 3:
            self._erase(x)
            return x
        first = len(x) // self.num_splits if self.num_splits > 1 else 0
        for i in range(first, len(x)):
            self._erase(x[i])
        return x

    def __repr__(self):
        return f"RandomErasing(p={self.probability}, mode={self.mode}, count=({self.min_count}, {self.max_count}))"
