"""Coercion: a value from YAML or the command line turned into its key's type, then range- and choice-checked.
Every failure is one ``ConfigError`` line naming the key and where the value came from."""
import difflib

import yaml

from .keys import BOOL_FALSE, BOOL_TRUE, ConfigError


def _type_name(t):
    return {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
            "floats": "a list of numbers", "ints": "a list of integers", "dict": "a mapping",
            "path": "a path"}[t]


class _Wrong(Exception):
    """A value that does not convert to the key's type (coerce turns it into the ConfigError)."""


def _to_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in BOOL_TRUE + BOOL_FALSE:
        return value.strip().lower() in BOOL_TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _Wrong


def _to_int(value):
    if isinstance(value, bool):
        raise _Wrong
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
        try:
            value = float(value)
        except ValueError:
            raise _Wrong from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Wrong


def _to_float(value):
    if isinstance(value, bool):
        raise _Wrong
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise _Wrong from None
    raise _Wrong


def _to_str(value):
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Wrong


def _to_dict(value):
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value) or {}
        except yaml.YAMLError:
            raise _Wrong from None
    if isinstance(value, dict):
        return dict(value)
    raise _Wrong


_CONVERTERS = {"bool": _to_bool, "int": _to_int, "float": _to_float, "str": _to_str, "path": _to_str,
               "dict": _to_dict}


def coerce(key_name, type_, value, source, nullable=False):
    """Convert ``value`` (from YAML or a CLI string) to ``type_``; ConfigError on failure."""
    def fail():
        raise ConfigError(f"{key_name}: expected {_type_name(type_)}, got {value!r} (from {source})")

    if isinstance(value, str) and value.strip().lower() in ("", "none", "null", "~") and (nullable or type_ == "path"):
        return None
    if value is None:
        if nullable:
            return None
        fail()
    if type_ in ("floats", "ints"):  # a YAML list, or "1,2,3" / "[1, 2, 3]" from the command line
        items = value
        if isinstance(value, str):
            text = value.strip()
            items = yaml.safe_load(text if text.startswith("[") else f"[{text}]")
        if not isinstance(items, (list, tuple)):
            fail()
        item = "int" if type_ == "ints" else "float"
        return [coerce(key_name, item, v, source) for v in items]
    if type_ not in _CONVERTERS:
        raise AssertionError(f"unknown key type {type_}")
    try:
        return _CONVERTERS[type_](value)
    except _Wrong:
        fail()


def check_value(key, value, source):
    """Range and choice checks for one canonical key."""
    if value is None:
        return
    where = f"(from {source})"
    if key.choices is not None and value not in key.choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in key.choices], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{key.name}: {value!r} is not one of {', '.join(map(str, key.choices))}{hint} {where}")
    if key.type in ("int", "float"):
        if key.positive and not value > 0:
            raise ConfigError(f"{key.name}: must be > 0, got {value} {where}")
        if key.min is not None and value < key.min:
            raise ConfigError(f"{key.name}: must be >= {key.min}, got {value} {where}")
        if key.max is not None and value > key.max:
            raise ConfigError(f"{key.name}: must be <= {key.max}, got {value} {where}")
