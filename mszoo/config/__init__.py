"""Configuration: documented defaults, then a YAML file (or a shipped recipe by name), then command-line flags.

Every key lives once in ``KEYS`` (``keys.py``) with its default, type and one-line help. A YAML file overrides the
defaults and CLI flags override the YAML (``parse.py``; ``--base_lr 0.001`` and ``--base-lr 0.001`` both work;
booleans take ``true/false``). The model-zoo readmes' spellings are mapped or noted (``compat.py``).
Values are coerced and range-checked (``coerce.py``, ``merge.py``), then checked across keys (``validate.py``).
Anything wrong (unknown key, wrong type, impossible value, missing file) raises ``ConfigError`` with one line
naming the key and where it came from; ``mszoo.cli`` turns that into a clean exit with code 2.
"""
from .coerce import check_value, coerce
from .compat import ALIASES, CONFIG_FLAGS, IGNORED, VALUE_MAPS, canonical_key
from .files import config_text, copy_config, format_config, load_yaml, save_config
from .keys import BACKEND_ARGS, KEY_MAP, KEYS, Config, ConfigError, ExtraArg, Key
from .merge import apply_mapping
from .parse import build_parser, find_config, parse_config, parse_script_args
from .seed_recipes import recipe_differences, seed_recipe_note
from .validate import keep_bn_fp32_note, source_of, validate

__all__ = ["ALIASES", "BACKEND_ARGS", "CONFIG_FLAGS", "IGNORED", "KEYS", "KEY_MAP", "VALUE_MAPS", "Config",
           "ConfigError", "ExtraArg", "Key", "apply_mapping", "build_parser", "canonical_key", "check_value",
           "coerce", "config_text", "copy_config", "find_config", "format_config", "keep_bn_fp32_note", "load_yaml",
           "parse_config", "parse_script_args", "recipe_differences", "save_config", "seed_recipe_note",
           "source_of", "validate"]
