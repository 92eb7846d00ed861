"""Inference with a checkpoint (MindSpore), a MindIR, ONNX or OpenVINO file, and evaluation of exported files.

``infer.py`` classifies an image or a folder (walked recursively in sorted order) with the eval
transform; unreadable or non-image files are reported and skipped, the rest are still classified.
"""
import json
import os
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from mszoo.data import create_dataset, load_class_names, load_rgb_image, transforms_imagenet_eval
from mszoo.extras import require
from mszoo.logger import get_logger
from mszoo.metrics import ClassificationMeter, format_results, softmax, write_results
from mszoo.resolve import (
    apply_checked_record,
    apply_record,
    data_config,
    dataset_root,
    eval_preprocessing,
    fill_preprocessing,
    is_explicit,
)

from .sidecar import find_sidecar, read_sidecar, shared_sidecar_path, sidecar_path


class InferenceError(ValueError):
    """A user error in inference (missing model file, no images, bad class-name file)."""


class Predictor:
    """Logits for float32 NCHW batches from one of four backends (mindspore, mindir, onnx, openvino).

    Building it completes ``cfg`` the way every script does (mszoo/resolve.py): from the checkpoint's model record
    (backend mindspore) or the exported file's sidecar (mindir/onnx/openvino), then the model's default cfg. After that
    ``preprocessing`` holds the eval transform's settings and ``class_names`` the label names (or None).
    ``checked_record``: the sidecar of an IR cache entry, already resolved against ``cfg`` (mszoo/deploy/ir_cache.py);
    with it an OpenVINO run imports no MindSpore.
    """

    def __init__(self, cfg: Mapping[str, Any], backend: str = "mindspore", model_file: Optional[str] = None,
                 precision: str = "f32", calib_data: Optional[str] = None,
                 checked_record: Optional[Mapping[str, Any]] = None) -> None:
        self.backend = backend
        self.precision = precision
        self.sidecar = checked_record  # an exported file's record, read once
        if precision != "f32" and backend != "openvino":
            raise InferenceError(f"--precision {precision} needs --backend openvino")
        if backend == "mindspore":
            if model_file:
                raise InferenceError("--model is for --backend mindir/onnx/openvino; use --pretrained for a checkpoint")
            import mindspore as ms

            from mszoo.cpu.kernels import use_fused_kernels

            from .export import build_deploy_model

            self._ms = ms
            self.model, self.class_names = build_deploy_model(cfg)
            use_fused_kernels(self.model)  # on CPU: Twins' PEG and the unfolds on their kernels, no convolution
            self.num_classes = cfg.num_classes
        elif checked_record is not None:
            self.class_names = apply_checked_record(cfg, checked_record, model_file)
            self.num_classes = cfg.num_classes
        else:
            if not model_file:
                raise InferenceError(f"--backend {backend} needs --model FILE (from export.py)")
            if not os.path.isfile(model_file):
                raise InferenceError(f"model file not found: {model_file}")
            self.sidecar = read_sidecar(model_file)
            self.class_names, self.num_classes = self._resolve_exported(cfg, model_file, self.sidecar)
        self.preprocessing = eval_preprocessing(cfg)
        if backend != "mindspore":
            self._load_exported(backend, model_file, calib_data)

    @staticmethod
    def _resolve_exported(cfg, model_file, record):
        if record is None:
            if not is_explicit(cfg, "arch"):
                shared = shared_sidecar_path(model_file)
                other = f"; {shared} describes another export of that name" if os.path.isfile(shared) else ""
                raise InferenceError(f"{model_file} has no sidecar {sidecar_path(model_file)} (written by export.py)"
                                     f"{other}: give --arch (or --config) so its preprocessing is known")
            fill_preprocessing(cfg)
            return None, None
        names = apply_record(cfg, record, find_sidecar(model_file))
        fill_preprocessing(cfg)
        return names, cfg.num_classes

    def _load_exported(self, backend, model_file, calib_data=None):
        if backend == "openvino":
            self.model = self._openvino(model_file, calib_data)
        elif backend == "mindir":
            import mindspore as ms

            self._ms = ms
            try:
                self.model = ms.nn.GraphCell(ms.load(model_file))
            except Exception as exc:  # MindSpore raises RuntimeError with a C++ stack
                raise InferenceError(f"cannot load MindIR {model_file}: {str(exc).splitlines()[0]}") from None
        elif backend == "onnx":
            ort = require("onnxruntime", "the onnx backend")
            try:
                self.session = ort.InferenceSession(model_file, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise InferenceError(f"cannot load ONNX {model_file}: {str(exc).splitlines()[0]}") from None
            self.input_name = self.session.get_inputs()[0].name
        else:
            raise InferenceError(f"unknown backend {backend}")

    def _openvino(self, model_file, calib_data):
        from . import ov_runtime

        model = model_file
        if calib_data and (self.precision != "int8" or self.quantized):
            raise InferenceError(f"--calib_data is only used to quantize a float model (--precision int8); "
                                 f"{model_file} runs in {'int8 as exported' if self.quantized else self.precision}")
        if self.precision == "int8" and not self.quantized:  # a float file: quantize it now
            if not calib_data:
                raise InferenceError(f"--precision int8 with the float model {model_file} needs --calib_data DIR "
                                     "(a few hundred images) or an int8 IR from export.py --precision int8")
            batches = ov_runtime.calibration_batches(calib_data, self.preprocessing)
            model, used = ov_runtime.quantize_int8(model_file, batches)
            get_logger().info(f"quantized {model_file} to int8 with NNCF on {used} images from {calib_data}")
        if self.precision == "int8":
            get_logger().info(f"int8: quantized operations in int8, the others in {ov_runtime.int8_rest_precision()} "
                              "(bf16 where the CPU has native bfloat16)")
        return ov_runtime.compile_model(model, self.precision)

    @property
    def quantized(self):
        """True for an exported file that export.py already quantized to int8."""
        return (self.sidecar or {}).get("precision") == "int8"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.backend == "onnx":
            logits = self.session.run(None, {self.input_name: batch})[0]
        elif self.backend == "openvino":
            logits = self.model(batch)
        else:
            logits = self.model(self._ms.Tensor(batch)).asnumpy()
        if self.num_classes is not None and logits.shape[-1] != self.num_classes:
            raise InferenceError(f"the model outputs {logits.shape[-1]} classes, its record says {self.num_classes}")
        return logits


def collect_files(path):
    """A file, or every non-hidden file under a directory in sorted (recursive) order."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise InferenceError(f"--input not found: {path}")
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(os.path.join(root, n) for n in sorted(names) if not n.startswith("."))
    if not files:
        raise InferenceError(f"--input {path} holds no files")
    return files


def read_class_names_file(path):
    if not os.path.isfile(path):
        raise InferenceError(f"--class_names file not found: {path}")
    if path.endswith(".json"):
        return load_class_names(path)
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise InferenceError(f"--class_names file {path} is empty")
    return names


def predict_files(predictor, files, transform, batch_size, class_names, topk=5):
    """``(predictions, skipped)``: predictions maps path -> record; skipped maps path -> reason."""
    predictions, skipped = {}, {}
    batch_paths, batch = [], []

    def flush():
        if not batch:
            return
        probs = softmax(predictor(np.stack(batch)))
        if class_names and probs.shape[1] != len(class_names):
            raise InferenceError(f"{len(class_names)} class names for a model with {probs.shape[1]} outputs")
        k = min(topk, probs.shape[1])
        for path, p in zip(batch_paths, probs):
            order = np.argsort(-p, kind="stable")[:k]
            top = [{"class": _name(class_names, int(i)), "index": int(i), "prob": float(p[i])} for i in order]
            predictions[path] = {"class": top[0]["class"], "index": top[0]["index"], "prob": top[0]["prob"],
                                 "top5": top}
        batch_paths.clear()
        batch.clear()

    for path in files:
        try:
            img = load_rgb_image(path)
        except Exception as exc:  # unreadable, truncated, not an image: report and go on
            skipped[path] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}"
            continue
        batch_paths.append(path)
        batch.append(transform(img))
        if len(batch) >= batch_size:
            flush()
    flush()
    return predictions, skipped


def _name(class_names, index):
    if class_names and index < len(class_names):
        return str(class_names[index])
    return str(index)


def infer_images(cfg, input=None, output=None, backend="mindspore", model=None, topk=5, class_names=None,
                 precision="f32", calib_data=None, checked_record=None):
    """infer.py: classify ``input`` (file or folder); print ``path: class (prob)``; JSON to ``output``."""
    log = get_logger()
    if topk < 1:
        raise InferenceError(f"--topk must be >= 1, got {topk}")
    files = collect_files(input)
    predictor = Predictor(cfg, backend=backend, model_file=model, precision=precision, calib_data=calib_data,
                          checked_record=checked_record)
    names = read_class_names_file(class_names) if class_names else predictor.class_names
    if names and predictor.num_classes is not None and len(names) != predictor.num_classes:
        raise InferenceError(f"--class_names {class_names} lists {len(names)} classes; the model has "
                             f"{predictor.num_classes}")
    transform = transforms_imagenet_eval(**predictor.preprocessing)
    predictions, skipped = predict_files(predictor, files, transform, min(cfg.batch_size, 64), names, topk)
    for path in files:
        if path in predictions:
            rec = predictions[path]
            log.info(f"{path}: {rec['class']} ({rec['prob']:.4f})")
        else:
            log.info(f"{path}: skipped ({skipped[path]})")
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w", encoding="utf-8") as f:
            json.dump(predictions, f, indent=2)
        log.info(f"wrote {len(predictions)} predictions to {output}")
    if skipped:
        log.info(f"skipped {len(skipped)} unreadable file(s)")
    if not predictions:
        raise InferenceError(f"no readable image under {input}")
    return 0


def evaluate_exported(cfg, backend, model_file=None, output=None, precision="f32", calib_data=None,
                      checked_record=None):
    """eval.py --backend mindir|onnx|openvino: the same metrics as from the checkpoint, on the same val data.

    With a reduced ``precision`` (OpenVINO bf16/int8) the float32 run of the same file is evaluated beside
    it, and the results add ``f32`` (its metrics) and ``top1_agreement`` (% of samples with the same top-1).
    """
    from mszoo.config import validate

    validate(cfg, need_data=True)
    predictor = Predictor(cfg, backend=backend, model_file=model_file, precision=precision, calib_data=calib_data,
                          checked_record=checked_record)
    reference = None
    if precision != "f32" and not predictor.quantized:
        reference = Predictor(cfg, backend=backend, model_file=model_file, checked_record=checked_record)
    root, _, val_dir = dataset_root(cfg)
    ds = create_dataset(root, "val", data_config(cfg, False), split_dir=val_dir, class_names=predictor.class_names,
                        **predictor.preprocessing)
    meter, ref_meter, agree = ClassificationMeter(), ClassificationMeter(), 0
    for images, labels in ds.create_tuple_iterator(num_epochs=1, output_numpy=True):
        logits = predictor(images)
        meter.update(logits, labels)
        if reference is not None:
            ref_logits = reference(images)
            ref_meter.update(ref_logits, labels)
            agree += int((logits.argmax(-1) == ref_logits.argmax(-1)).sum())
    if meter.count == 0:
        from mszoo.models.loading import CheckpointError

        raise CheckpointError(f"no validation samples found in {val_dir}")
    results = meter.result()
    log = get_logger()
    log.info(format_results(results))
    if reference is not None:
        results = dict(results, precision=precision, f32=ref_meter.result(),
                       top1_agreement=round(100.0 * agree / meter.count, 4))
        log.info(f"{precision} against f32 on the same file: f32 {format_results(results['f32'])}; "
                 f"top-1 agreement {results['top1_agreement']:.2f}% of {meter.count} samples")
    if output:
        write_results(results, output)
    return 0
