"""mszoo: the MindSpore model zoo for vision transformers: Twins (PCPVT, SVT), T2T-ViT and TNT.

    import mszoo
    model = mszoo.create_model("twins_svt_small", num_classes=10)

The public API is imported on first use, so ``import mszoo`` (and ``mszoo.cli``, which must quiet MindSpore's
logging before MindSpore loads) does not import MindSpore, and changes no global state.
"""
import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> the module that defines it
_PUBLIC = {
    "create_model": "mszoo.models",
    "list_models": "mszoo.models",
    "is_model": "mszoo.models",
    "get_default_cfg": "mszoo.models",
    "resolve_data_config": "mszoo.models",
    "load_weights": "mszoo.models.loading",
    "load_pretrained": "mszoo.models.loading",
    "CheckpointFile": "mszoo.models.loading",
    "CheckpointError": "mszoo.models.loading",
    "Predictor": "mszoo.deploy.infer",
    "list_recipes": "mszoo.recipes",
}

__all__ = ["__version__", "create_model", "list_models", "is_model", "get_default_cfg", "resolve_data_config",
           "load_weights", "load_pretrained", "CheckpointFile", "CheckpointError", "Predictor", "list_recipes"]

if TYPE_CHECKING:  # what type checkers see; at run time the names load on first use (__getattr__)
    from mszoo.deploy.infer import Predictor
    from mszoo.models import create_model, get_default_cfg, is_model, list_models, resolve_data_config
    from mszoo.models.loading import CheckpointError, CheckpointFile, load_pretrained, load_weights
    from mszoo.recipes import list_recipes


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mszoo' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))
