"""Model zoo: importing this package registers every family."""
from .builder import build_model_with_cfg
from .registry import (
    MODEL_ALIASES,
    SEED_CODE_VARIANTS,
    checkpoint_filter,
    create_model,
    create_model_from_config,
    get_default_cfg,
    is_model,
    list_models,
    register_model,
    resolve_data_config,
    resolve_name,
)

__all__ = ["MODEL_ALIASES", "SEED_CODE_VARIANTS", "build_model_with_cfg", "checkpoint_filter", "create_model",
           "create_model_from_config", "get_default_cfg", "is_model", "list_models", "register_model",
           "resolve_data_config", "resolve_name"]

# Importing the family modules registers their variants.
from . import t2t_vit, tnt, twins  # noqa: E402,F401
