"""Inference with a checkpoint (MindSpore), a MindIR file or an ONNX file, and evaluation of exported files.

``infer.py`` classifies an image or a folder (walked recursively in sorted order) with the eval
transform; unreadable or non-image files are reported and skipped, the rest are still classified.
"""
import json
import os

import numpy as np

from src.data import create_dataset, dataset_dirs, load_class_names, load_rgb_image, transforms_imagenet_eval
from src.logger import get_logger
from src.metrics import ClassificationMeter, format_results, softmax, write_results
from src.models.loading import CheckpointError

from .export import build_deploy_model, read_sidecar


class InferenceError(ValueError):
    """A user error in inference (missing model file, no images, bad class-name file)."""


class Predictor:
    """Logits for float32 NCHW batches from one of three backends."""

    def __init__(self, cfg, backend="mindspore", model_file=None):
        self.backend = backend
        self.class_names = None
        self.meta = {}
        if backend == "mindspore":
            if model_file:
                raise InferenceError("--model is for --backend mindir/onnx; use --pretrained for a checkpoint")
            import mindspore as ms

            self._ms = ms
            self.model, self.class_names = build_deploy_model(cfg)
        else:
            if not model_file:
                raise InferenceError(f"--backend {backend} needs --model FILE (from export.py)")
            if not os.path.isfile(model_file):
                raise InferenceError(f"model file not found: {model_file}")
            self.meta = read_sidecar(model_file) or {}
            self.class_names = self.meta.get("class_names")
            if backend == "mindir":
                import mindspore as ms

                self._ms = ms
                try:
                    self.model = ms.nn.GraphCell(ms.load(model_file))
                except Exception as exc:  # MindSpore raises RuntimeError with a C++ stack
                    raise InferenceError(f"cannot load MindIR {model_file}: {str(exc).splitlines()[0]}") from None
            elif backend == "onnx":
                import onnxruntime as ort

                try:
                    self.session = ort.InferenceSession(model_file, providers=["CPUExecutionProvider"])
                except Exception as exc:
                    raise InferenceError(f"cannot load ONNX {model_file}: {str(exc).splitlines()[0]}") from None
                self.input_name = self.session.get_inputs()[0].name
            else:
                raise InferenceError(f"unknown backend {backend}")

    def preprocessing(self, cfg):
        """Eval preprocessing: the exported file's sidecar wins over the config."""
        get = lambda key: self.meta.get(key, cfg[key]) if self.meta.get(key) is not None else cfg[key]
        return dict(image_size=get("image_size"), crop_pct=get("crop_pct"), interpolation=get("interpolation"),
                    mean=tuple(get("mean")), std=tuple(get("std")))

    def __call__(self, batch):
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.backend == "onnx":
            return self.session.run(None, {self.input_name: batch})[0]
        return self.model(self._ms.Tensor(batch)).asnumpy()


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


def infer_images(cfg, input=None, output=None, backend="mindspore", model=None, topk=5, class_names=None):
    """infer.py: classify ``input`` (file or folder); print ``path: class (prob)``; JSON to ``output``."""
    from src.cli import set_device

    set_device(cfg.device_target, cfg.device_id, mode="graph")
    log = get_logger()
    if topk < 1:
        raise InferenceError(f"--topk must be >= 1, got {topk}")
    files = collect_files(input)
    predictor = Predictor(cfg, backend=backend, model_file=model)
    names = read_class_names_file(class_names) if class_names else predictor.class_names
    transform = transforms_imagenet_eval(**predictor.preprocessing(cfg))
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


def evaluate_exported(cfg, backend, model_file=None, output=None):
    """eval.py --backend mindir|onnx: the same metrics as from the checkpoint, on the same val data."""
    from src.cli import set_device
    from src.config import validate

    validate(cfg, need_data=True)
    set_device(cfg.device_target, cfg.device_id, mode="graph")
    predictor = Predictor(cfg, backend=backend, model_file=model_file)
    pre = predictor.preprocessing(cfg)
    val_dir = dataset_dirs(cfg.dataset, cfg.data_url, cfg.train_dir, cfg.val_dir, cfg.output_dir)[2]
    ds = create_dataset(split="val", split_dir=val_dir, is_training=False, batch_size=cfg.batch_size,
                        num_parallel_workers=cfg.num_parallel_workers, num_samples=cfg.val_num_samples, **pre)
    meter = ClassificationMeter()
    for images, labels in ds.create_tuple_iterator(num_epochs=1, output_numpy=True):
        meter.update(predictor(images), labels)
    if meter.count == 0:
        raise CheckpointError(f"no validation samples found in {val_dir}")
    results = meter.result()
    get_logger().info(format_results(results))
    if output:
        write_results(results, output)
    return 0
