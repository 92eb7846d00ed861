"""Config files: reading a YAML config safely (no code runs), writing the resolved one, printing it."""
import copy
import os

import yaml

from mszoo.fileio import atomic_open

from .compat import _safe_load_tolerating_tabs
from .keys import KEYS, ConfigError


def load_yaml(path):
    """Read a YAML config with ``yaml.safe_load`` (no code runs); the top level must be a mapping."""
    if not os.path.isfile(path):
        raise ConfigError(f"config: file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        data = _safe_load_tolerating_tabs(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config: invalid YAML in {path}{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: cannot read {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path} must hold a mapping of key: value, not {type(data).__name__}")
    return data


def copy_config(cfg):
    """An independent copy of ``cfg`` (values, sources and notes): code that resolves keys for one run
    works on a copy and leaves the caller's config as it was."""
    return copy.deepcopy(cfg)


def config_text(cfg):
    """The resolved config as YAML text (keys in the order of KEYS): ``config.yaml`` and a checkpoint's copy."""
    return yaml.safe_dump({k.name: cfg[k.name] for k in KEYS if k.name in cfg}, sort_keys=False,
                          default_flow_style=None)


def save_config(cfg, path):
    """Write the resolved config as ``config_text`` to ``path`` (atomically)."""
    with atomic_open(path) as f:
        f.write(config_text(cfg))


def format_config(cfg):
    """The resolved config as aligned ``key: value  [source]`` lines."""
    width = max(len(k.name) for k in KEYS)
    lines = []
    for key in KEYS:
        src = cfg.source_of(key.name)
        lines.append(f"  {key.name:<{width}} : {cfg[key.name]!r}" + ("" if src == "default" else f"  [{src}]"))
    return "\n".join(lines)
