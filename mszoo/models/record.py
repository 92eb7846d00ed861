"""The model record: what a checkpoint (or an exported model's sidecar JSON) says about its model.

Every checkpoint the project writes (``train.py``, ``convert_from_pt.py``) carries one record under the
entry ``model_record`` (JSON text), and ``export.py`` writes the same record as the sidecar ``NAME.<ext>.json``:

- ``arch`` (canonical name), ``num_classes``, ``model_kwargs`` (``create_model`` overrides such as
  ``embed_dims``), ``image_size`` and ``in_chans``: enough to build the very model the weights belong to;
- ``class_names`` (label order of the training folders, or None);
- the eval preprocessing: ``crop_pct``, ``interpolation``, ``mean``, ``std`` (with ``image_size``).

Checkpoints written before the record existed still carry the resolved training config (``config``, YAML)
and ``class_names``; a record is derived from them. Files with neither (the model-zoo readmes', foreign ones) have no
record: their model then comes from flags.
"""
import json

RECORD_KEY = "model_record"
RECORD_FORMAT = 1
MODEL_KEYS = ("arch", "num_classes", "model_kwargs", "image_size", "in_chans")
PREPROCESS_KEYS = ("image_size", "crop_pct", "interpolation", "mean", "std")
RECORD_KEYS = MODEL_KEYS + ("class_names",) + PREPROCESS_KEYS[1:]


def plain(value):
    """JSON-friendly copy: tuples become lists (so records compare equal after a round trip)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def make_record(arch, num_classes, image_size, crop_pct, interpolation, mean, std, in_chans=3, model_kwargs=None,
                class_names=None):
    """A model record (see the module docstring); ``arch`` should be the canonical name."""
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for a {num_classes}-class model")
    return {"format": RECORD_FORMAT, "arch": arch, "num_classes": int(num_classes),
            "model_kwargs": plain(dict(model_kwargs or {})), "image_size": int(image_size), "in_chans": int(in_chans),
            "class_names": None if class_names is None else [str(c) for c in class_names],
            "crop_pct": float(crop_pct), "interpolation": str(interpolation),
            "mean": [float(m) for m in mean], "std": [float(s) for s in std]}


def record_to_text(record):
    return json.dumps(record, sort_keys=True)


def record_from_text(text, source):
    """Parse a record written by ``record_to_text`` (or a sidecar); ``ValueError`` naming ``source`` if broken."""
    try:
        record = json.loads(text)
    except ValueError:
        raise ValueError(f"{source}: its model record is not valid JSON") from None
    return check_record(record, source)


def check_record(record, source):
    """``record`` if it is a mapping with every record key, else ``ValueError`` naming ``source``."""
    if not isinstance(record, dict):
        raise ValueError(f"{source}: its model record is not a mapping")
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise ValueError(f"{source}: its model record lacks {', '.join(missing)}")
    return record


def record_from_config(config_text, class_names, source):
    """The record of a checkpoint written before records existed: from its saved config (YAML)."""
    import yaml

    try:
        cfg = yaml.safe_load(config_text)
    except yaml.YAMLError:
        raise ValueError(f"{source}: its saved config is not valid YAML") from None
    if not isinstance(cfg, dict) or not all(cfg.get(k) is not None for k in ("arch", "num_classes", "image_size")):
        return None
    if class_names is not None and len(class_names) != cfg["num_classes"]:
        class_names = None
    return make_record(cfg["arch"], cfg["num_classes"], cfg["image_size"], cfg.get("crop_pct"),
                       cfg.get("interpolation"), cfg.get("mean"), cfg.get("std"), in_chans=cfg.get("in_chans", 3),
                       model_kwargs=cfg.get("model_kwargs"), class_names=class_names)


def record_from_entries(entries, source):
    """The record held by a checkpoint's non-tensor entries (``{name: str}``), or None."""
    if RECORD_KEY in entries:
        return record_from_text(entries[RECORD_KEY], source)
    if "config" in entries:
        names = json.loads(entries["class_names"]) if "class_names" in entries else None
        return record_from_config(entries["config"], names, source)
    return None
