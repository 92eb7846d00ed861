"""Export a model to MINDIR (dynamic batch), ONNX (dynamic batch) or AIR (Ascend only).

Next to the exported file its own sidecar (``NAME.mindir.json``, ``NAME.onnx.json``, ``NAME.xml.json``: one per
file, so exports under one name never overwrite each other's record) records what inference needs: the model
record of the checkpoint (mszoo/models/record.py: architecture, classes, class names, input size and the eval
preprocessing that was resolved for the export), plus the file format and batch size. The ``NAME.json`` that
older versions shared between formats is still read for the format it records.
"""
import os
import shutil
import tempfile

import mindspore as ms
import numpy as np

from mszoo.config import ConfigError
from mszoo.cpu.kernels import builtin_ops
from mszoo.extras import require
from mszoo.logger import get_logger
from mszoo.models.layers import set_exportable
from mszoo.models.loading import CheckpointFile
from mszoo.resolve import eval_preprocessing, load_eval_model, pretrained_file, record_of, resolve_from_checkpoint

from .sidecar import (  # noqa: F401  (the sidecar API, also reachable from here as before)
    EXTENSIONS,
    ExportError,
    find_sidecar,
    read_sidecar,
    shared_sidecar_path,
    sidecar_path,
    write_sidecar,
)


def deploy_metadata(cfg, class_names=None, file_format="MINDIR", batch_size=None):
    """The sidecar written beside an exported model: the model record (mszoo/models/record.py) of what was
    exported, with the file format and batch size (None: dynamic batch axis)."""
    return dict(record_of(cfg, class_names), file_format=file_format, batch_size=batch_size)


def build_deploy_model(cfg):
    """The eval-mode model of ``cfg.pretrained``: ``cfg`` is completed from the checkpoint's record, then the
    weights load by the one rule (never re-headed). Returns ``(model, class_names)``."""
    if not cfg.pretrained:
        raise ConfigError("pretrained: give the checkpoint to use (--pretrained FILE.ckpt); a model with random "
                          "weights is never exported or run")
    checkpoint = CheckpointFile(pretrained_file(cfg))
    class_names = resolve_from_checkpoint(cfg, checkpoint)
    model, which = load_eval_model(cfg, checkpoint)
    get_logger().info(f"loaded {which} of {checkpoint.path}: {cfg.arch}, {cfg.num_classes} classes, "
                      f"{cfg.image_size}px, crop {cfg.crop_pct} {cfg.interpolation}, mean {cfg.mean}, std {cfg.std}")
    return model, class_names


class _ExportRoot(ms.nn.Cell):
    """``net`` under a top cell of its own, made for one export. MindSpore caches the graph it compiles for an
    export per top cell, format and input shape, and reuses it whatever the cells' Python state is by then
    (``set_exportable``, the mode); its ONNX writer also rewrites that cached graph in place, so a second ONNX
    export of one model crashed inside MindSpore (``i: 3 out of range``). A new top cell compiles the model as it
    is now, and its graph is freed with it; ``auto_prefix=False`` keeps the parameter names. A backbone's list of
    maps (``features_only``) leaves as a tuple: one graph output per map (MindSpore's ONNX writer has no list)."""

    def __init__(self, net):
        super().__init__(auto_prefix=False)
        self.net = net

    def construct(self, x):
        out = self.net(x)
        if isinstance(out, list):
            return tuple(out)
        return out


def _ms_export(model, inputs, base, file_format):
    """``ms.export`` of ``model`` compiled afresh (``_ExportRoot``): any number of exports of one model work."""
    ms.export(_ExportRoot(model), inputs, file_name=base, file_format=file_format)


def _dummy(batch, cfg):
    shape = (batch, cfg.in_chans, cfg.image_size, cfg.image_size)
    return ms.Tensor(np.zeros(shape, np.float32))


def export_mindir(model, cfg, path, dynamic=True, batch_size=1):
    base = os.path.splitext(path)[0]
    if dynamic:
        spec = ms.Tensor(shape=[None, cfg.in_chans, cfg.image_size, cfg.image_size], dtype=ms.float32)
    else:
        spec = _dummy(batch_size, cfg)
    _ms_export(model, spec, base, "MINDIR")
    return base + ".mindir"


def export_onnx(model, cfg, path, dynamic=True, batch_size=1):
    """ONNX via MindSpore's exporter (static), made dynamic in the batch axis by diffing two exports."""
    onnx = require("onnx", "ONNX export")

    from .onnx_batch import merge_dynamic_batch
    from .onnx_graph import fold_constant_transposes, restore_erf, variance_as_mean_square

    tmp = tempfile.mkdtemp(prefix="onnx_export_")
    try:
        graphs = []
        for batch in ((2, 3) if dynamic else (batch_size,)):
            base = os.path.join(tmp, f"b{batch}")
            _ms_export(model, _dummy(batch, cfg), base, "ONNX")
            graphs.append(onnx.load(base + ".onnx"))
        result = merge_dynamic_batch(graphs[0], graphs[1], 2, 3) if dynamic else graphs[0]
        restore_erf(result)
        variance_as_mean_square(result)
        fold_constant_transposes(result)
        onnx.checker.check_model(result)
        if not dynamic:
            path = os.path.splitext(path)[0] + ".onnx"
        onnx.save(result, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def export_air(model, cfg, path, batch_size=1):
    base = os.path.splitext(path)[0]
    _ms_export(model, _dummy(batch_size, cfg), base, "AIR")
    return base + ".air"


def _export_format(model, cfg, file_format, path, dynamic, batch_size, precision, calib_data):
    if file_format == "MINDIR":
        return export_mindir(model, cfg, path, dynamic=dynamic, batch_size=batch_size)
    if file_format == "ONNX":
        return export_onnx(model, cfg, path, dynamic=dynamic, batch_size=batch_size)
    if file_format == "OPENVINO":
        return export_openvino(model, cfg, path, precision, calib_data)
    return export_air(model, cfg, path, batch_size=batch_size)


def export_to_file(model, cfg, file_format, path, class_names=None, dynamic=True, batch_size=1, precision="f32",
                   calib_data=None):
    """Export ``model``'s inference graph to ``path`` and write the sidecar; returns the file written.

    The model is put in eval mode first (no dropout, drop path or training-only code in the exported graph)
    and is left in eval mode. OPENVINO writes an IR (``.xml`` + ``.bin``, float32 weights) converted from our
    ONNX export; with ``precision="int8"`` it is quantized by NNCF on the images in ``calib_data`` first."""
    file_format = file_format.upper()
    if file_format not in EXTENSIONS:
        raise ExportError(f"file_format must be one of {', '.join(EXTENSIONS)}, got {file_format}")
    if precision not in ("f32", "int8") or (precision == "int8" and file_format != "OPENVINO"):
        raise ExportError(f"precision {precision}: exports are float32, or int8 with --file_format OPENVINO "
                          "(bf16 is chosen when running: infer.py/eval.py --backend openvino --precision bf16)")
    if calib_data and precision != "int8":
        raise ExportError("--calib_data is only used to quantize (--file_format OPENVINO --precision int8); "
                          "this export is float32")
    if file_format == "AIR" and cfg.device_target != "Ascend":
        raise ExportError("AIR export needs an Ascend device (--device_target Ascend); use MINDIR or ONNX on CPU/GPU")
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    model.set_train(False)  # ms.export traces the cells' current mode for MINDIR and AIR (ONNX it switches itself)
    # Only ONNX lacks an exact GELU (no Erf in MindSpore's exporter); MINDIR and AIR keep the GeLU kernel.
    set_exportable(model, file_format in ("ONNX", "OPENVINO"))
    try:
        with builtin_ops(model):  # no custom op in the file, whatever kernels the model was given
            written = _export_format(model, cfg, file_format, path, dynamic, batch_size, precision, calib_data)
    finally:
        set_exportable(model, False)
    meta = deploy_metadata(cfg, class_names, file_format, None if dynamic and file_format != "AIR" else batch_size)
    meta["precision"] = precision
    write_sidecar(written, meta)
    return written


def export_openvino(model, cfg, path, precision="f32", calib_data=None):
    """An OpenVINO IR of ``model``: our dynamic-batch ONNX converted, optionally quantized to int8."""
    tmp = tempfile.mkdtemp(prefix="ov_export_")
    try:
        onnx_path = export_onnx(model, cfg, os.path.join(tmp, "m.onnx"))
        return openvino_from_onnx(onnx_path, path, cfg, precision, calib_data)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def openvino_from_onnx(onnx_path, path, cfg=None, precision="f32", calib_data=None):
    """The OpenVINO IR (``path``) of our ONNX export ``onnx_path``; int8: quantized by NNCF on ``calib_data``
    preprocessed as ``cfg`` says."""
    from . import ov_runtime

    if precision == "int8":
        if not calib_data:
            raise ExportError("precision int8 needs --calib_data DIR (a few hundred images of your data)")
        batches = ov_runtime.calibration_batches(calib_data, eval_preprocessing(cfg))
        ov_model, used = ov_runtime.quantize_int8(onnx_path, batches)
        get_logger().info(f"quantized to int8 with NNCF on {used} images from {calib_data}")
    else:
        ov_model = ov_runtime.convert_onnx(onnx_path)
    return ov_runtime.save_ir(ov_model, path)


def export_model(cfg, precision="f32", calib_data=None):
    """export.py: the checkpoint ``cfg.pretrained`` exported per ``file_format`` (device set by the script)."""
    model, class_names = build_deploy_model(cfg)
    name = cfg.file_name or cfg.arch
    path = name if name.endswith(EXTENSIONS[cfg.file_format]) else name + EXTENSIONS[cfg.file_format]
    written = export_to_file(model, cfg, cfg.file_format, path, class_names=class_names,
                             dynamic=cfg.file_format != "AIR", batch_size=cfg.batch_size, precision=precision,
                             calib_data=calib_data)
    get_logger().info(f"exported {cfg.arch} to {written} (input {cfg.in_chans}x{cfg.image_size}x{cfg.image_size}, "
                      f"dynamic batch) with preprocessing in {sidecar_path(written)}")
    return 0
