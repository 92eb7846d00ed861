"""AutoAugment, RandAugment, AugMix and 3-Augment on PIL images, with timm's policy strings.

The semantics follow timm (``timm/data/auto_augment.py``): the same op set, the same magnitude -> argument
mappings, the same policy tables and the same parsing of policy strings such as ``rand-m9-mstd0.5-inc1``,
``original``, ``v0``, ``v0r``, ``3a`` or ``augmix-m3-w3``. Random draws come from Python's ``random`` and
from ``numpy.random`` in the same order as timm, so seeding both gives the same augmentation as timm.

Magnitudes live on a 0..10 scale (``LEVEL_DENOM``); every op turns the magnitude into its own argument.
"""
import random
import re

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from mszoo.constants import IMAGENET_DEFAULT_MEAN

__all__ = [
    "LEVEL_DENOM", "AugmentOp", "AutoAugment", "RandAugment", "AugMixAugment", "auto_augment_policy",
    "auto_augment_transform", "rand_augment_transform", "augment_and_mix_transform", "create_auto_augment",
    "rand_augment_choices", "parse_policy_sections",
]

LEVEL_DENOM = 10.0
FILL_GREY = (128, 128, 128)
DEFAULT_HPARAMS = {"translate_const": 250, "img_mean": FILL_GREY}

_RESAMPLE = Image.Resampling
_BILINEAR_OR_BICUBIC = (_RESAMPLE.BILINEAR, _RESAMPLE.BICUBIC)
_PIL_INTERP = {
    "nearest": _RESAMPLE.NEAREST, "bilinear": _RESAMPLE.BILINEAR, "bicubic": _RESAMPLE.BICUBIC,
    "box": _RESAMPLE.BOX, "hamming": _RESAMPLE.HAMMING, "lanczos": _RESAMPLE.LANCZOS,
}


# --------------------------------------------------------------------------------------------------------------
# image operations: (image, *level_args, fill, resample) -> image
# --------------------------------------------------------------------------------------------------------------
def _pick_resample(resample):
    """A tuple of filters means 'choose one at random per call' (bilinear or bicubic by default)."""
    if isinstance(resample, (tuple, list)):
        return random.choice(resample)
    return resample


def _affine(img, coeffs, fill, resample):
    return img.transform(img.size, Image.Transform.AFFINE, coeffs, resample=_pick_resample(resample), fillcolor=fill)


def _op_shear_x(img, factor, fill, resample):
    return _affine(img, (1, factor, 0, 0, 1, 0), fill, resample)


def _op_shear_y(img, factor, fill, resample):
    return _affine(img, (1, 0, 0, factor, 1, 0), fill, resample)


def _op_translate_x(img, pixels, fill, resample):
    return _affine(img, (1, 0, pixels, 0, 1, 0), fill, resample)


def _op_translate_y(img, pixels, fill, resample):
    return _affine(img, (1, 0, 0, 0, 1, pixels), fill, resample)


def _op_translate_x_rel(img, fraction, fill, resample):
    return _op_translate_x(img, fraction * img.size[0], fill, resample)


def _op_translate_y_rel(img, fraction, fill, resample):
    return _op_translate_y(img, fraction * img.size[1], fill, resample)


def _op_rotate(img, degrees, fill, resample):
    return img.rotate(degrees, resample=_pick_resample(resample), fillcolor=fill)


def _op_auto_contrast(img, fill, resample):
    return ImageOps.autocontrast(img)


def _op_equalize(img, fill, resample):
    return ImageOps.equalize(img)


def _op_invert(img, fill, resample):
    return ImageOps.invert(img)


def _op_solarize(img, threshold, fill, resample):
    return ImageOps.solarize(img, threshold)


def _op_solarize_add(img, addend, fill, resample, threshold=128):
    """Add ``addend`` to every value below ``threshold`` (clipped at 255); only L and RGB images change."""
    if img.mode not in ("L", "RGB"):
        return img
    table = [min(255, v + addend) if v < threshold else v for v in range(256)]
    return img.point(table * len(img.getbands()))


def _op_posterize(img, bits, fill, resample):
    return img if bits >= 8 else ImageOps.posterize(img, bits)


def _enhancer(kind):
    def op(img, factor, fill, resample):
        return kind(img).enhance(factor)
    return op


_op_color = _enhancer(ImageEnhance.Color)
_op_contrast = _enhancer(ImageEnhance.Contrast)
_op_brightness = _enhancer(ImageEnhance.Brightness)
_op_sharpness = _enhancer(ImageEnhance.Sharpness)


def _op_desaturate(img, amount, fill, resample):
    """``amount`` 0 keeps the colours, 1 gives grey."""
    return ImageEnhance.Color(img).enhance(min(1.0, max(0.0, 1.0 - amount)))


def _op_gaussian_blur(img, radius, fill, resample):
    return img.filter(ImageFilter.GaussianBlur(radius=radius))


def _op_gaussian_blur_rand(img, strength, fill, resample):
    return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0 * strength)))


# --------------------------------------------------------------------------------------------------------------
# magnitude (0..10) -> op arguments
# --------------------------------------------------------------------------------------------------------------
def _coin_sign(value):
    """Flip the sign with probability one half (one draw from ``random``)."""
    return -value if random.random() > 0.5 else value


def _signed_scale(top, key=None, default=None):
    """Magnitude mapped linearly to [0, top] (or to ``hparams[key]``), then a random sign."""
    def level(magnitude, hparams):
        limit = top if key is None else float(hparams.get(key, default))
        return (_coin_sign(magnitude / LEVEL_DENOM * limit),)
    return level


def _enhance_level(magnitude, hparams):
    # factor in [0.1, 1.9]: 0.1 at magnitude 0, identity (1.0) at magnitude 5
    return (magnitude / LEVEL_DENOM * 1.8 + 0.1,)


def _enhance_increasing_level(magnitude, hparams):
    # distance from the identity factor grows with magnitude, in a random direction, never below 0.1
    return (max(0.1, 1.0 + _coin_sign(magnitude / LEVEL_DENOM * 0.9)),)


def _linear_level(low, high):
    def level(magnitude, hparams):
        value = low + (high - low) * (magnitude / LEVEL_DENOM)
        return (min(high, max(low, value)),)
    return level


def _posterize_bits(magnitude):
    return int(magnitude / LEVEL_DENOM * 4)


def _posterize_level(magnitude, hparams):
    return (_posterize_bits(magnitude),)  # keep 0..4 bits: stronger at low magnitude (TF EfficientNet)


def _posterize_increasing_level(magnitude, hparams):
    return (4 - _posterize_bits(magnitude),)  # keep 4..0 bits: stronger at high magnitude


def _posterize_original_level(magnitude, hparams):
    return (_posterize_bits(magnitude) + 4,)  # keep 4..8 bits (AutoAugment paper)


def _solarize_threshold(magnitude):
    return min(256, int(magnitude / LEVEL_DENOM * 256))


def _solarize_level(magnitude, hparams):
    return (_solarize_threshold(magnitude),)


def _solarize_increasing_level(magnitude, hparams):
    return (256 - _solarize_threshold(magnitude),)


def _solarize_add_level(magnitude, hparams):
    return (min(128, int(magnitude / LEVEL_DENOM * 110)),)


# name -> (operation, magnitude-to-arguments or None)
OPS = {
    "AutoContrast": (_op_auto_contrast, None),
    "Equalize": (_op_equalize, None),
    "Invert": (_op_invert, None),
    "Rotate": (_op_rotate, _signed_scale(30.0)),
    "Posterize": (_op_posterize, _posterize_level),
    "PosterizeIncreasing": (_op_posterize, _posterize_increasing_level),
    "PosterizeOriginal": (_op_posterize, _posterize_original_level),
    "Solarize": (_op_solarize, _solarize_level),
    "SolarizeIncreasing": (_op_solarize, _solarize_increasing_level),
    "SolarizeAdd": (_op_solarize_add, _solarize_add_level),
    "Color": (_op_color, _enhance_level),
    "ColorIncreasing": (_op_color, _enhance_increasing_level),
    "Contrast": (_op_contrast, _enhance_level),
    "ContrastIncreasing": (_op_contrast, _enhance_increasing_level),
    "Brightness": (_op_brightness, _enhance_level),
    "BrightnessIncreasing": (_op_brightness, _enhance_increasing_level),
    "Sharpness": (_op_sharpness, _enhance_level),
    "SharpnessIncreasing": (_op_sharpness, _enhance_increasing_level),
    "ShearX": (_op_shear_x, _signed_scale(0.3)),
    "ShearY": (_op_shear_y, _signed_scale(0.3)),
    "TranslateX": (_op_translate_x, _signed_scale(None, "translate_const", 250)),
    "TranslateY": (_op_translate_y, _signed_scale(None, "translate_const", 250)),
    "TranslateXRel": (_op_translate_x_rel, _signed_scale(None, "translate_pct", 0.45)),
    "TranslateYRel": (_op_translate_y_rel, _signed_scale(None, "translate_pct", 0.45)),
    "Desaturate": (_op_desaturate, _linear_level(0.5, 1.0)),
    "GaussianBlur": (_op_gaussian_blur, _linear_level(0.1, 2.0)),
    "GaussianBlurRand": (_op_gaussian_blur_rand, _linear_level(0.0, 1.0)),
}


class AugmentOp:
    """One named op applied with probability ``prob`` at ``magnitude`` (0..10).

    ``hparams`` keys: ``img_mean`` (fill colour of geometric ops), ``interpolation`` (PIL filter; default:
    bilinear or bicubic at random), ``translate_const``, ``translate_pct``, ``magnitude_std`` (Gaussian noise on
    the magnitude per call; ``inf`` = uniform in [0, magnitude]) and ``magnitude_max`` (upper clip, default 10).
    """

    def __init__(self, name, prob=0.5, magnitude=10, hparams=None):
        if name not in OPS:
            raise ValueError(f"unknown augmentation op {name!r}; known: {', '.join(sorted(OPS))}")
        hparams = dict(DEFAULT_HPARAMS if hparams is None else hparams)
        self.name = name
        self.prob = prob
        self.magnitude = magnitude
        self.hparams = hparams
        self.op, self.level = OPS[name]
        self.fill = hparams.get("img_mean", FILL_GREY)
        self.resample = hparams.get("interpolation", _BILINEAR_OR_BICUBIC)
        self.magnitude_std = hparams.get("magnitude_std", 0)
        self.magnitude_max = hparams.get("magnitude_max")

    def sample_magnitude(self):
        magnitude = self.magnitude
        if self.magnitude_std == float("inf"):
            magnitude = random.uniform(0, magnitude)
        elif self.magnitude_std > 0:
            magnitude = random.gauss(magnitude, self.magnitude_std)
        return max(0.0, min(magnitude, self.magnitude_max or LEVEL_DENOM))

    def level_args(self, magnitude):
        return () if self.level is None else self.level(magnitude, self.hparams)

    def __call__(self, img):
        if self.prob < 1.0 and random.random() > self.prob:
            return img
        args = self.level_args(self.sample_magnitude())
        return self.op(img, *args, fill=self.fill, resample=self.resample)

    def __repr__(self):
        extra = f", mmax={self.magnitude_max}" if self.magnitude_max is not None else ""
        return f"AugmentOp(name={self.name}, p={self.prob}, m={self.magnitude}, mstd={self.magnitude_std}{extra})"


# --------------------------------------------------------------------------------------------------------------
# AutoAugment policies: each line is one sub-policy of "Name:probability:magnitude" entries
# --------------------------------------------------------------------------------------------------------------
_POLICY_V0 = """
Equalize:0.8:1 ShearY:0.8:4 | Color:0.4:9 Equalize:0.6:3 | Color:0.4:1 Rotate:0.6:8
Solarize:0.8:3 Equalize:0.4:7 | Solarize:0.4:2 Solarize:0.6:2 | Color:0.2:0 Equalize:0.8:8
Equalize:0.4:8 SolarizeAdd:0.8:3 | ShearX:0.2:9 Rotate:0.6:8 | Color:0.6:1 Equalize:1.0:2
Invert:0.4:9 Rotate:0.6:0 | Equalize:1.0:9 ShearY:0.6:3 | Color:0.4:7 Equalize:0.6:0
Posterize:0.4:6 AutoContrast:0.4:7 | Solarize:0.6:8 Color:0.6:9 | Solarize:0.2:4 Rotate:0.8:9
Rotate:1.0:7 TranslateYRel:0.8:9 | ShearX:0.0:0 Solarize:0.8:4 | ShearY:0.8:0 Color:0.6:4
Color:1.0:0 Rotate:0.6:2 | Equalize:0.8:4 Equalize:0.0:8 | Equalize:1.0:4 AutoContrast:0.6:2
ShearY:0.4:7 SolarizeAdd:0.6:7 | Posterize:0.8:2 Solarize:0.6:10 | Solarize:0.6:8 Equalize:0.6:1
Color:0.8:6 Rotate:0.4:5
"""

# AutoAugment paper (arXiv:1805.09501) ImageNet policy
_POLICY_ORIGINAL = """
PosterizeOriginal:0.4:8 Rotate:0.6:9 | Solarize:0.6:5 AutoContrast:0.6:5 | Equalize:0.8:8 Equalize:0.6:3
PosterizeOriginal:0.6:7 PosterizeOriginal:0.6:6 | Equalize:0.4:7 Solarize:0.2:4 | Equalize:0.4:4 Rotate:0.8:8
Solarize:0.6:3 Equalize:0.6:7 | PosterizeOriginal:0.8:5 Equalize:1.0:2 | Rotate:0.2:3 Solarize:0.6:8
Equalize:0.6:8 PosterizeOriginal:0.4:6 | Rotate:0.8:8 Color:0.4:0 | Rotate:0.4:9 Equalize:0.6:2
Equalize:0.0:7 Equalize:0.8:8 | Invert:0.6:4 Equalize:1.0:8 | Color:0.6:4 Contrast:1.0:8
Rotate:0.8:8 Color:1.0:2 | Color:0.8:8 Solarize:0.8:7 | Sharpness:0.4:7 Invert:0.6:8
ShearX:0.6:5 Equalize:1.0:9 | Color:0.4:0 Equalize:0.6:3 | Equalize:0.4:7 Solarize:0.2:4
Solarize:0.6:5 AutoContrast:0.6:5 | Invert:0.6:4 Equalize:1.0:8 | Color:0.6:4 Contrast:1.0:8
Equalize:0.8:8 Equalize:0.6:3
"""

# DeiT III "3-Augment": one of solarize, grey, blur per image
_POLICY_3A = "Solarize:1.0:5 | Desaturate:1.0:10 | GaussianBlurRand:1.0:10"

# the "r" variants use the research posterize (bits removed grow with magnitude)
_POLICIES = {
    "v0": (_POLICY_V0, {}),
    "v0r": (_POLICY_V0, {"Posterize": "PosterizeIncreasing"}),
    "original": (_POLICY_ORIGINAL, {}),
    "originalr": (_POLICY_ORIGINAL, {"PosterizeOriginal": "PosterizeIncreasing"}),
    "3a": (_POLICY_3A, {}),
}


def _parse_policy_table(text, rename):
    subs = []
    for chunk in text.replace("\n", "|").split("|"):
        if not chunk.strip():
            continue
        entries = []
        for item in chunk.split():
            name, prob, magnitude = item.split(":")
            entries.append((rename.get(name, name), float(prob), int(magnitude)))
        subs.append(entries)
    return subs


def auto_augment_policy(name="v0", hparams=None):
    """The named policy as a list of sub-policies, each a list of :class:`AugmentOp`."""
    if name not in _POLICIES:
        raise ValueError(f"unknown AutoAugment policy {name!r}; known: {', '.join(_POLICIES)}")
    text, rename = _POLICIES[name]
    hparams = DEFAULT_HPARAMS if hparams is None else hparams
    return [[AugmentOp(n, p, m, hparams=hparams) for n, p, m in sub] for sub in _parse_policy_table(text, rename)]


class AutoAugment:
    """Apply one sub-policy chosen uniformly at random."""

    def __init__(self, policy):
        self.policy = policy

    def __call__(self, img):
        for op in random.choice(self.policy):
            img = op(img)
        return img

    def __repr__(self):
        lines = ["[" + ", ".join(map(repr, sub)) + "]" for sub in self.policy]
        return "AutoAugment(policy=\n\t" + "\n\t".join(lines) + ")"


# --------------------------------------------------------------------------------------------------------------
# RandAugment
# --------------------------------------------------------------------------------------------------------------
_RAND_OPS = ["AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
             "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"]
_INCREASING = {"Posterize": "PosterizeIncreasing", "Solarize": "SolarizeIncreasing", "Color": "ColorIncreasing",
               "Contrast": "ContrastIncreasing", "Brightness": "BrightnessIncreasing",
               "Sharpness": "SharpnessIncreasing"}
_RAND_INCREASING_OPS = [_INCREASING.get(n, n) for n in _RAND_OPS]
_RAND_3A_OPS = ["SolarizeIncreasing", "Desaturate", "GaussianBlur"]
# weighted op sets (selected with 't3aw' / 'tweights'); weights are relative
_RAND_WEIGHTS_3A = {
    "SolarizeIncreasing": 6, "Desaturate": 6, "GaussianBlur": 6, "Rotate": 3, "ShearX": 2, "ShearY": 2,
    "PosterizeIncreasing": 1, "AutoContrast": 1, "ColorIncreasing": 1, "SharpnessIncreasing": 1,
    "ContrastIncreasing": 1, "BrightnessIncreasing": 1, "Equalize": 1, "Invert": 1,
}
_RAND_WEIGHTS_0 = {
    "Rotate": 3, "ShearX": 2, "ShearY": 2, "TranslateXRel": 1, "TranslateYRel": 1, "ColorIncreasing": 0.25,
    "SharpnessIncreasing": 0.25, "AutoContrast": 0.25, "SolarizeIncreasing": 0.05, "SolarizeAdd": 0.05,
    "ContrastIncreasing": 0.05, "BrightnessIncreasing": 0.05, "Equalize": 0.05, "PosterizeIncreasing": 0.05,
    "Invert": 0.05,
}


def rand_augment_choices(name, increasing=True):
    """Op set selected by a ``t<name>`` section: ``weights``, ``3aw`` (dicts of weights), ``3a`` or the default."""
    sets = {"weights": _RAND_WEIGHTS_0, "3aw": _RAND_WEIGHTS_3A, "3a": _RAND_3A_OPS}
    if name in sets:
        return sets[name]
    return _RAND_INCREASING_OPS if increasing else _RAND_OPS


class RandAugment:
    """Apply ``num_layers`` ops drawn from ``ops`` (with replacement, or weighted without replacement)."""

    def __init__(self, ops, num_layers=2, choice_weights=None):
        self.ops = ops
        self.num_layers = num_layers
        self.choice_weights = choice_weights

    def __call__(self, img):
        picks = np.random.choice(len(self.ops), self.num_layers, replace=self.choice_weights is None,
                                 p=self.choice_weights)
        for k in picks:
            img = self.ops[k](img)
        return img

    def __repr__(self):
        return f"RandAugment(n={self.num_layers}, ops=\n\t" + "\n\t".join(map(repr, self.ops)) + ")"


def parse_policy_sections(sections):
    """Split ``['m9', 'mstd0.5', 'inc1']`` into ``[('m', '9'), ('mstd', '0.5'), ('inc', '1')]``.

    The key is everything before the first digit; a section without a digit is ignored, as timm does.
    """
    pairs = []
    for section in sections:
        match = re.match(r"^(\D*)(\d.*)$", section)
        if match:
            pairs.append((match.group(1), match.group(2)))
    return pairs


def _split_policy(config_str, expected_head=None):
    parts = config_str.split("-")
    if expected_head is not None and parts[0] != expected_head:
        raise ValueError(f"policy string {config_str!r} must start with {expected_head!r}")
    return parts[0], parts[1:]


def rand_augment_transform(config_str, hparams=None, transforms=None):
    """RandAugment from a string like ``rand-m9-n2-mstd0.5-inc1``.

    Sections (any order): ``m`` magnitude (int, default 10), ``n`` layers per image (default 2), ``p`` per-op
    probability (default 0.5), ``mstd`` magnitude noise std (> 100 means uniform sampling), ``mmax`` magnitude
    upper bound, ``inc`` 1 for the ops whose strength increases with magnitude, ``t<name>`` op set.
    """
    hparams = dict(DEFAULT_HPARAMS) if hparams is None else hparams
    _, sections = _split_policy(config_str, "rand")
    numeric, transforms = _split_op_set_section(sections, transforms)
    magnitude, num_layers, prob, increasing = _parse_rand_sections(numeric, hparams, config_str)
    names, weights = _rand_op_names(transforms, increasing)
    ops = [AugmentOp(name, prob=prob, magnitude=magnitude, hparams=hparams) for name in names]
    return RandAugment(ops, num_layers, choice_weights=weights)


def _split_op_set_section(sections, transforms):
    """The numeric sections, and ``transforms`` (or, when None, the name of the first ``t<name>`` section)."""
    numeric = []
    for section in sections:
        if section.startswith("t"):
            if transforms is None:
                transforms = section[1:]
        else:
            numeric.append(section)
    return numeric, transforms


def _parse_rand_sections(numeric, hparams, config_str):
    """``(magnitude, num_layers, prob, increasing)`` from the numeric sections; ``mstd`` and ``mmax`` go to
    ``hparams`` (unless already set there)."""
    magnitude, num_layers, prob, increasing = LEVEL_DENOM, 2, 0.5, False
    for key, val in parse_policy_sections(numeric):
        if key == "mstd":
            std = float(val)
            hparams.setdefault("magnitude_std", float("inf") if std > 100 else std)
        elif key == "mmax":
            hparams.setdefault("magnitude_max", int(val))
        elif key == "inc":
            increasing = bool(int(val))
        elif key == "m":
            magnitude = int(val)
        elif key == "n":
            num_layers = int(val)
        elif key == "p":
            prob = float(val)
        else:
            raise ValueError(f"unknown RandAugment section {key!r} in {config_str!r}")
    return magnitude, num_layers, prob, increasing


def _rand_op_names(transforms, increasing):
    """The op names and their normalized choice weights (None unless ``transforms`` is a dict of weights);
    ``transforms`` is an op-set name, a list or dict of op names, or None for the default set."""
    if isinstance(transforms, str):
        transforms = rand_augment_choices(transforms, increasing=increasing)
    elif transforms is None:
        transforms = _RAND_INCREASING_OPS if increasing else _RAND_OPS
    if not isinstance(transforms, dict):
        return transforms, None
    names = list(transforms)
    raw = np.array([transforms[n] for n in names], dtype=np.float64)
    return names, raw / raw.sum()


def auto_augment_transform(config_str, hparams=None):
    """AutoAugment from a string like ``original``, ``v0``, ``v0r``, ``originalr``, ``3a`` or ``v0-mstd0.5``."""
    hparams = dict(DEFAULT_HPARAMS) if hparams is None else hparams
    name, sections = _split_policy(config_str)
    for key, val in parse_policy_sections(sections):
        if key != "mstd":
            raise ValueError(f"unknown AutoAugment section {key!r} in {config_str!r}")
        hparams.setdefault("magnitude_std", float(val))
    return AutoAugment(auto_augment_policy(name, hparams=hparams))


# --------------------------------------------------------------------------------------------------------------
# AugMix
# --------------------------------------------------------------------------------------------------------------
_AUGMIX_OPS = ["AutoContrast", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
               "SharpnessIncreasing", "Equalize", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing", "ShearX",
               "ShearY", "TranslateXRel", "TranslateYRel"]


class AugMixAugment:
    """AugMix (arXiv:1912.02781): ``width`` chains of 1..3 (or ``depth``) ops mixed with Dirichlet weights,
    then blended with the original image with a Beta(alpha, alpha) weight."""

    def __init__(self, ops, alpha=1.0, width=3, depth=-1, blended=False):
        self.ops = ops
        self.alpha = alpha
        self.width = width
        self.depth = depth
        self.blended = blended

    def _chain(self, img):
        depth = self.depth if self.depth > 0 else np.random.randint(1, 4)
        for k in np.random.choice(len(self.ops), depth, replace=True):
            img = self.ops[k](img)
        return img

    def _blend_weights(self, weights, m):
        # per-chain Image.blend factors that reproduce sum(w_i * chain_i) * m + img * (1 - m) step by step
        remaining = 1.0
        out = []
        for w in (weights * m)[::-1]:
            alpha = w / remaining
            remaining *= 1 - alpha
            out.append(alpha)
        return np.array(out[::-1], dtype=np.float32)

    def _mix_blended(self, img, weights, m):
        original = img.copy()
        for w in self._blend_weights(weights, m):
            img = Image.blend(img, self._chain(original), w)
        return img

    def _mix_basic(self, img, weights, m):
        acc = np.zeros_like(np.asarray(img), dtype=np.float32)
        for w in weights:
            acc += w * np.asarray(self._chain(img), dtype=np.float32)
        np.clip(acc, 0, 255.0, out=acc)
        return Image.blend(img, Image.fromarray(acc.astype(np.uint8)), m)

    def __call__(self, img):
        weights = np.float32(np.random.dirichlet([self.alpha] * self.width))
        m = np.float32(np.random.beta(self.alpha, self.alpha))
        return self._mix_blended(img, weights, m) if self.blended else self._mix_basic(img, weights, m)

    def __repr__(self):
        return (f"AugMixAugment(alpha={self.alpha}, width={self.width}, depth={self.depth}, ops=\n\t"
                + "\n\t".join(map(repr, self.ops)) + ")")


def augment_and_mix_transform(config_str, hparams=None):
    """AugMix from a string like ``augmix-m3-w3``: ``m`` severity (3), ``w`` chains (3), ``d`` depth (-1 =
    random 1..3), ``a`` alpha (1.0), ``b`` 1 for blended mode, ``mstd`` magnitude noise (default uniform)."""
    hparams = dict(DEFAULT_HPARAMS) if hparams is None else hparams
    magnitude, width, depth, alpha, blended = 3, 3, -1, 1.0, False
    _, sections = _split_policy(config_str, "augmix")
    for key, val in parse_policy_sections(sections):
        if key == "mstd":
            hparams.setdefault("magnitude_std", float(val))
        elif key == "m":
            magnitude = int(val)
        elif key == "w":
            width = int(val)
        elif key == "d":
            depth = int(val)
        elif key == "a":
            alpha = float(val)
        elif key == "b":
            blended = bool(int(val))
        else:
            raise ValueError(f"unknown AugMix section {key!r} in {config_str!r}")
    hparams.setdefault("magnitude_std", float("inf"))
    ops = [AugmentOp(name, prob=1.0, magnitude=magnitude, hparams=hparams) for name in _AUGMIX_OPS]
    return AugMixAugment(ops, alpha=alpha, width=width, depth=depth, blended=blended)


def create_auto_augment(config_str, image_size=224, mean=IMAGENET_DEFAULT_MEAN, interpolation="bicubic"):
    """The augmentation for a policy string, with the hyper-parameters timm's training transform uses.

    Translations reach 45% of the (smaller) image side, geometric ops fill with the dataset mean colour and
    resample with ``interpolation`` ('random' = bilinear or bicubic per call). Returns None for an empty string.
    """
    if not config_str:
        return None
    side = min(image_size) if isinstance(image_size, (tuple, list)) else image_size
    hparams = {
        "translate_const": int(side * 0.45),
        "img_mean": tuple(min(255, round(255 * x)) for x in mean),
    }
    if interpolation and interpolation != "random":
        if interpolation not in _PIL_INTERP:
            raise ValueError(f"unknown interpolation {interpolation!r}; known: random, {', '.join(_PIL_INTERP)}")
        hparams["interpolation"] = _PIL_INTERP[interpolation]
    if config_str.startswith("rand"):
        return rand_augment_transform(config_str, hparams)
    if config_str.startswith("augmix"):
        hparams["translate_pct"] = 0.3
        return augment_and_mix_transform(config_str, hparams)
    return auto_augment_transform(config_str, hparams)
