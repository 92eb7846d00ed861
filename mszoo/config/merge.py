"""Merging one source's values (a YAML mapping, the command line, a checkpoint's record) into a ``Config``:
each key canonical (dashes, model-zoo readme spellings), coerced to its type and range-checked, and its source
remembered."""
from .coerce import check_value, coerce
from .compat import _normalise_special, _seed_key, canonical_key
from .keys import KEY_MAP, ConfigError


def apply_mapping(cfg, mapping, source, notes):
    """Apply ``{key: value}`` from one source onto ``cfg`` (canonical keys, coerced, range-checked)."""
    seen = {}
    for raw_name, value in mapping.items():
        if not isinstance(raw_name, str):
            raise ConfigError(f"key {raw_name!r} is not a string (from {source})")
        name = canonical_key(raw_name, source)
        if name is None:
            mapped = _seed_key(raw_name, value, source, notes)
            if mapped is None:
                continue
            name, value = mapped
        key = KEY_MAP[name]
        value = coerce(name, key.type, _normalise_special(name, value), source, nullable=key.nullable)
        if key.choices and isinstance(value, str):
            # Choices are case-insensitive (adamW -> adamw, o1 -> O1).
            value = next((c for c in key.choices if c.lower() == value.lower()), value)
        if name in seen and seen[name][1] != value:
            raise ConfigError(f"{name}: set twice with different values ('{seen[name][0]}' and '{raw_name}') "
                              f"(from {source})")
        check_value(key, value, source)
        seen[name] = (raw_name, value)
        cfg.set(name, value, source)
