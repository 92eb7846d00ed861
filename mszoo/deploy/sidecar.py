"""The sidecar beside an exported model (``NAME.onnx.json``, ``NAME.xml.json``: one per file): its model record
(mszoo/models/record.py) plus the file format, batch size and precision. Finding and writing one import no
MindSpore (``read_sidecar``'s record check imports the model package, and with it MindSpore).
"""
import json
import os

from mszoo.fileio import atomic_open

EXTENSIONS = {"MINDIR": ".mindir", "ONNX": ".onnx", "OPENVINO": ".xml", "AIR": ".air"}


class ExportError(ValueError):
    """A request that cannot be exported (format, device, model)."""


def sidecar_path(model_file):
    """The sidecar of one exported file: ``NAME.onnx`` -> ``NAME.onnx.json``."""
    return model_file + ".json"


def shared_sidecar_path(model_file):
    """The ``NAME.json`` older versions wrote for every format exported under NAME (the last export's record)."""
    return os.path.splitext(model_file)[0] + ".json"


def _format_of(model_file):
    ext = os.path.splitext(model_file)[1].lower()
    return next((fmt for fmt, e in EXTENSIONS.items() if e == ext), None)


def write_sidecar(model_file, meta):
    """Write ``model_file``'s own sidecar (atomically: a temporary file renamed); returns its path."""
    path = sidecar_path(model_file)
    with atomic_open(path) as f:
        json.dump(meta, f, indent=2)
    return path


def find_sidecar(model_file):
    """The sidecar describing ``model_file``: its own, else an older shared ``NAME.json`` that records this file's
    format (one that records another format describes another file); None when there is none."""
    own = sidecar_path(model_file)
    if os.path.isfile(own):
        return own
    shared = shared_sidecar_path(model_file)
    if not os.path.isfile(shared):
        return None
    try:
        with open(shared, encoding="utf-8") as f:
            recorded = json.load(f).get("file_format")
    except (ValueError, AttributeError):
        return shared  # read_sidecar says what is wrong with it
    return shared if recorded is None or str(recorded).upper() == _format_of(model_file) else None


def read_sidecar(model_file):
    """The record beside an exported model (see ``find_sidecar``), or None when there is no sidecar."""
    path = find_sidecar(model_file)
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except ValueError:
            raise ExportError(f"{path} is not valid JSON") from None
    from mszoo.models.record import check_record  # imports the model package (MindSpore): only here

    if isinstance(data, dict):  # sidecars written before model records had no model_kwargs (a graph needs none)
        data.setdefault("model_kwargs", {})
    return check_record(data, path)
