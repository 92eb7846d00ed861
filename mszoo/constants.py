"""Constants shared by models (default cfgs), data (transforms) and config: each defined here only (with the
one rule that reads two of them, ``names_published_weights``, and where the cache lives, ``cache_dir``)."""
import os

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
IMAGENET_INCEPTION_MEAN = (0.5, 0.5, 0.5)  # TNT's published weights are trained with these
IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5)
DEFAULT_CROP_PCT = 0.875  # timm's default when a model's cfg names none

# The names config accepts and mszoo/engine/optim.py / schedulers.py build (each module implements every name).
OPTIMIZERS = ("adamw", "adam", "momentum", "sgd", "lamb")
LR_SCHEDULERS = ("cosine_lr", "step_lr", "multistep_lr", "exponential_lr", "polynomial_lr", "constant_lr")

# ``pretrained`` values that name published weights instead of a local file (resolved by mszoo/models/hub.py).
PUBLISHED_WEIGHTS_NAMES = ("true", "timm")
REMOTE_WEIGHTS_PREFIXES = ("hf-hub:", "http://", "https://", "file://")


def names_published_weights(spec):
    """True for ``pretrained`` values that are not a local file: True, "timm", Hub ids and URLs."""
    if spec is True:
        return True
    return isinstance(spec, str) and (spec.lower() in PUBLISHED_WEIGHTS_NAMES or
                                      spec.startswith(REMOTE_WEIGHTS_PREFIXES))


def cache_dir():
    """``$MSZOO_CACHE`` (default ``~/.cache/mszoo``): downloaded and converted weights, built CPU kernels."""
    return os.path.expanduser(os.environ.get("MSZOO_CACHE") or os.path.join("~", ".cache", "mszoo"))
