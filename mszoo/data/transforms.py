"""Image transforms on PIL images with timm's ``create_transform`` semantics, ending in normalised CHW float32.

Train: RandomResizedCrop(scale=(min_crop, 1), ratio=(3/4, 4/3)) -> horizontal flip -> auto-augment policy (or
colour jitter when no policy is set, as timm does) -> to float, normalise -> random erasing.
Eval: resize the shorter side to ``floor(image_size / crop_pct)`` -> center crop -> to float, normalise.

Every random draw of the train transform uses Python's ``random`` (crop, flip, op probabilities, erasing boxes) or
``numpy.random`` (RandAugment op choice, AugMix), like timm.
"""
import math
import random

import numpy as np
from PIL import Image, ImageEnhance

from mszoo.constants import DEFAULT_CROP_PCT, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .auto_augment import create_auto_augment
from .random_erasing import RandomErasing

__all__ = [
    "IMAGENET_DEFAULT_MEAN", "IMAGENET_DEFAULT_STD", "DEFAULT_CROP_PCT", "INTERPOLATIONS", "pil_interpolation",
    "Compose", "RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "ResizeShorter", "CenterCrop",
    "ToNormalizedArray", "create_transform", "transforms_imagenet_train", "transforms_imagenet_eval",
]


_R = Image.Resampling
INTERPOLATIONS = {"nearest": _R.NEAREST, "bilinear": _R.BILINEAR, "bicubic": _R.BICUBIC, "box": _R.BOX,
                  "hamming": _R.HAMMING, "lanczos": _R.LANCZOS, "random": (_R.BILINEAR, _R.BICUBIC)}


def pil_interpolation(name):
    """PIL filter for an interpolation name; ``random`` gives the (bilinear, bicubic) pair to choose from."""
    try:
        return INTERPOLATIONS[name]
    except KeyError:
        raise ValueError(f"unknown interpolation {name!r}; known: {', '.join(INTERPOLATIONS)}") from None


def _pair(size):
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f"size must be an int or (height, width), got {size!r}")
        return int(size[0]), int(size[1])
    return int(size), int(size)


def _resize(img, height, width, resample):
    if img.size == (width, height):
        return img
    return img.resize((width, height), resample)


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    @property
    def writes_into(self):
        """Whether ``out`` is used: one of the transforms can write its result into a given array."""
        return any(getattr(t, "writes_into", False) for t in self.transforms)

    def __call__(self, img, out=None):
        """The transformed image. With ``out``, the first transform that can write into an array does (the
        training batch's slot, so the worker copies no image); the result is ``out`` unless a later transform
        returned a new array."""
        for t in self.transforms:
            if out is not None and getattr(t, "writes_into", False):
                img, out = t(img, out=out), None
            else:
                img = t(img)
        return img

    def __repr__(self):
        return "Compose(\n    " + "\n    ".join(map(repr, self.transforms)) + "\n)"


class RandomResizedCrop:
    """Crop a random area fraction in ``scale`` with a log-uniform aspect ratio in ``ratio``, resize to ``size``.

    Ten tries to fit the box in the image, then a fallback to the largest central crop with a ratio in range.
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation="bilinear"):
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"scale and ratio must be (min, max), got scale={scale}, ratio={ratio}")
        self.size = _pair(size)
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.interpolation = pil_interpolation(interpolation) if isinstance(interpolation, str) else interpolation

    @staticmethod
    def get_params(img, scale, ratio):
        """``(top, left, height, width)`` of the crop box."""
        img_w, img_h = img.size
        area = img_w * img_h
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = random.uniform(*scale) * area
            aspect = math.exp(random.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if w <= img_w and h <= img_h:
                top = random.randint(0, img_h - h)
                left = random.randint(0, img_w - w)
                return top, left, h, w
        in_ratio = img_w / img_h
        if in_ratio < min(ratio):
            w, h = img_w, int(round(img_w / min(ratio)))
        elif in_ratio > max(ratio):
            w, h = int(round(img_h * max(ratio))), img_h
        else:
            w, h = img_w, img_h
        return (img_h - h) // 2, (img_w - w) // 2, h, w

    def __call__(self, img):
        top, left, h, w = self.get_params(img, self.scale, self.ratio)
        resample = self.interpolation
        if isinstance(resample, (tuple, list)):
            resample = random.choice(resample)
        img = img.crop((left, top, left + w, top + h))
        return _resize(img, self.size[0], self.size[1], resample)

    def __repr__(self):
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        if random.random() < self.p:
            return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class ColorJitter:
    """Brightness, contrast, saturation (and hue) jitter in random order, torchvision's PIL semantics.

    A scalar strength ``s`` draws a factor uniformly in [max(0, 1 - s), 1 + s]; ``hue`` in [-hue, hue].
    """

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
        self.ranges = [self._range(brightness), self._range(contrast), self._range(saturation)]
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue jitter must be in [0, 0.5], got {hue}")
        self.hue = hue

    @staticmethod
    def _range(strength):
        if strength < 0:
            raise ValueError(f"colour jitter strength must be >= 0, got {strength}")
        return (max(0.0, 1.0 - strength), 1.0 + strength) if strength else None

    @staticmethod
    def adjust_hue(img, shift):
        if img.mode in ("L", "1", "I", "F"):
            return img
        h, s, v = img.convert("HSV").split()
        hue = np.array(h, dtype=np.uint8)
        hue += np.uint8(np.int32(shift * 255) & 0xFF)  # wraps around, as hue should
        return Image.merge("HSV", (Image.fromarray(hue), s, v)).convert(img.mode)

    def __call__(self, img):
        enhancers = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)
        for k in random.sample(range(4), 4):
            if k < 3 and self.ranges[k] is not None:
                img = enhancers[k](img).enhance(random.uniform(*self.ranges[k]))
            elif k == 3 and self.hue:
                img = self.adjust_hue(img, random.uniform(-self.hue, self.hue))
        return img

    def __repr__(self):
        return f"ColorJitter(ranges={self.ranges}, hue={self.hue})"


class ResizeShorter:
    """Resize so the shorter side is ``size`` (longer side ``int(size * long / short)``), keeping aspect ratio."""

    def __init__(self, size, interpolation="bilinear"):
        self.size = int(size)
        self.interpolation = pil_interpolation(interpolation) if isinstance(interpolation, str) else interpolation
        if isinstance(self.interpolation, tuple):
            raise ValueError("the eval resize needs one interpolation, not 'random'")

    def __call__(self, img):
        w, h = img.size
        if w <= h:
            new_w, new_h = self.size, int(self.size * h / w)
        else:
            new_w, new_h = int(self.size * w / h), self.size
        return _resize(img, new_h, new_w, self.interpolation)

    def __repr__(self):
        return f"ResizeShorter(size={self.size})"


class CenterCrop:
    """Crop the center ``size`` box (padding with black first if the image is smaller)."""

    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, img):
        crop_h, crop_w = self.size
        w, h = img.size
        if crop_w > w or crop_h > h:
            canvas = Image.new(img.mode, (max(w, crop_w), max(h, crop_h)))
            canvas.paste(img, ((crop_w - w) // 2 if crop_w > w else 0, (crop_h - h) // 2 if crop_h > h else 0))
            img = canvas
            w, h = img.size
            if (w, h) == (crop_w, crop_h):
                return img
        top = int(round((h - crop_h) / 2.0))
        left = int(round((w - crop_w) / 2.0))
        return img.crop((left, top, left + crop_w, top + crop_h))

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class ToNormalizedArray:
    """PIL RGB image -> float32 CHW array ``(x / 255 - mean) / std``.

    The 256 possible values of each channel are computed once (the same float32 operations, so the same bits as
    computing every pixel) and looked up per pixel: one pass, no float intermediate of the whole image.
    """

    def __init__(self, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1, 1)
        levels = np.arange(256, dtype=np.float32)[None, :] / np.float32(255.0)
        self.table = np.ascontiguousarray((levels - self.mean) / self.std, dtype=np.float32)

    writes_into = True

    def __call__(self, img, out=None):
        """The normalised image; written into ``out`` (a float32 CHW array) when given."""
        arr = np.asarray(img, dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        chans, stats = arr.shape[2], len(self.table)
        n = max(chans, stats)  # one side may have a single channel (broadcast), as numpy would
        if chans not in (1, n) or stats not in (1, n):
            raise ValueError(f"a {chans}-channel image for a {stats}-channel mean and std")
        if out is None:
            out = np.empty((n,) + arr.shape[:2], np.float32)
        for c in range(n):
            np.take(self.table[c if stats > 1 else 0], arr[:, :, c if chans > 1 else 0], out=out[c])
        return out

    def __repr__(self):
        return f"ToNormalizedArray(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"


def transforms_imagenet_train(image_size=224, min_crop=0.08, ratio=(3.0 / 4.0, 4.0 / 3.0), hflip=0.5,
                              color_jitter=0.4, auto_augment=None, interpolation="random",
                              mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, re_prob=0.0, re_mode="const",
                              re_count=1):
    """timm's training transform. Colour jitter is used only without an auto-augment policy (or with a ``3a``
    policy), as in timm; ``color_jitter`` may be a strength or a (brightness, contrast, saturation[, hue]) tuple."""
    tfl = [RandomResizedCrop(image_size, scale=(min_crop, 1.0), ratio=ratio, interpolation=interpolation)]
    if hflip > 0:
        tfl.append(RandomHorizontalFlip(hflip))
    use_jitter = True
    if auto_augment:
        use_jitter = "3a" in auto_augment
        tfl.append(create_auto_augment(auto_augment, image_size=image_size, mean=mean, interpolation=interpolation))
    if color_jitter and use_jitter:
        strengths = tuple(color_jitter) if isinstance(color_jitter, (tuple, list)) else (float(color_jitter),) * 3
        if len(strengths) not in (3, 4):
            raise ValueError(f"color_jitter must be a number or 3/4 numbers, got {color_jitter!r}")
        tfl.append(ColorJitter(*strengths))
    tfl.append(ToNormalizedArray(mean, std))
    if re_prob > 0:
        tfl.append(RandomErasing(re_prob, mode=re_mode, max_count=re_count))
    return Compose(tfl)


def transforms_imagenet_eval(image_size=224, crop_pct=DEFAULT_CROP_PCT, interpolation="bilinear",
                             mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD):
    """Resize the shorter side to ``floor(image_size / crop_pct)``, center crop ``image_size``, normalise."""
    crop_pct = crop_pct or DEFAULT_CROP_PCT
    if not 0 < crop_pct <= 1:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    if interpolation == "random":
        interpolation = "bilinear"
    h, w = _pair(image_size)
    if h != w:
        raise ValueError(f"the eval transform takes a square image_size, got {image_size!r}")
    return Compose([ResizeShorter(math.floor(h / crop_pct), interpolation), CenterCrop((h, w)),
                    ToNormalizedArray(mean, std)])


def create_transform(image_size=224, is_training=False, interpolation="bicubic", crop_pct=DEFAULT_CROP_PCT,
                     min_crop=0.08, ratio=(3.0 / 4.0, 4.0 / 3.0), hflip=0.5, color_jitter=0.4, auto_augment=None,
                     re_prob=0.0, re_mode="const", re_count=1, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD):
    """PIL image -> normalised float32 CHW array; train or eval pipeline (see the module docstring)."""
    if is_training:
        return transforms_imagenet_train(image_size, min_crop=min_crop, ratio=ratio, hflip=hflip,
                                         color_jitter=color_jitter, auto_augment=auto_augment,
                                         interpolation=interpolation, mean=mean, std=std, re_prob=re_prob,
                                         re_mode=re_mode, re_count=re_count)
    return transforms_imagenet_eval(image_size, crop_pct=crop_pct, interpolation=interpolation, mean=mean, std=std)
