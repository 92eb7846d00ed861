"""OpenVINO: the CPU inference runtime for our exported models (ONNX read directly, or an OpenVINO IR).

Precision is always set explicitly: OpenVINO's own default on CPUs with native bfloat16 (AVX512_BF16, AMX)
is to compute in bf16, which would silently change the logits of a "float32" run.

- ``f32``: exact (logits within 1e-4 of the checkpoint, tested);
- ``bf16``: only where the CPU reports BF16 (else one clear error); its top-1 agreement with f32 is reported;
- ``int8``: post-training quantization with NNCF on calibration images through the eval transform
  (``quantize_int8``), saved as an IR; the operations NNCF left in float (LayerNorm, softmax, GELU, the
  softmax-weighted sum of the values) run in bf16 where the CPU has native bfloat16, else in f32
  (``int8_rest_precision``).

Threads follow the machine (all cores) with the LATENCY hint: each call is one synchronous request, which
THROUGHPUT's per-stream split of the cores would slow down (batch 8 ran at half speed with it on 2 vCPUs).
"""
import functools
import os

import numpy as np

from mszoo.extras import require

PRECISIONS = ("f32", "bf16", "int8")
IR_SUFFIX = ".xml"


class OpenVINOError(ValueError):
    """A model or precision OpenVINO cannot run here (message is one line)."""


def _ov():
    return require("openvino", "the openvino backend")


def cpu_has_bf16():
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _check_bf16():
    if not cpu_has_bf16():
        raise OpenVINOError("precision bf16: this CPU has no native bfloat16 (OpenVINO reports no BF16 "
                            "capability); use --precision f32 or int8")


@functools.cache
def _core():
    """The process's OpenVINO Core. OpenVINO's CPU plugin bundles its own oneDNN, which reads
    ONEDNN_MAX_CPU_ISA once, at its first kernel: under MindSpore's AVX2 cap (mszoo.cpu.onednn.configure_cpu_kernels)
    it loses AVX-512 and every bf16 kernel, and OpenVINO 2026.4 crashed (SIGSEGV) in its fused LayerNorm
    (MVN) on TNT. So the plugin's first compile runs with the variable removed; it is put back at once
    (MindSpore's own oneDNN read it long before and keeps its cap)."""
    ov = _ov()
    cap = os.environ.pop("ONEDNN_MAX_CPU_ISA", None)
    try:
        core = ov.Core()
        x = ov.opset13.parameter([1, 4], ov.Type.f32)
        core.compile_model(ov.Model([ov.opset13.relu(x)], [x]), "CPU")  # the plugin reads the ISA now
    finally:
        if cap is not None:
            os.environ["ONEDNN_MAX_CPU_ISA"] = cap
    return core


def read_model(path):
    """An OpenVINO model from our ONNX export or an IR (``.xml`` with its ``.bin``)."""
    if not os.path.isfile(path):
        raise OpenVINOError(f"model file not found: {path}")
    if not path.endswith((".onnx", IR_SUFFIX)):
        raise OpenVINOError(f"{path}: the openvino backend reads our .onnx export or an OpenVINO IR (.xml + .bin)")
    _check_format(path)
    try:
        return _core().read_model(path)
    except Exception as exc:  # RuntimeError with OpenVINO's multi-line message: its last line says why
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise OpenVINOError(f"OpenVINO cannot read {path}: {lines[-1] if lines else type(exc).__name__}") from None


def _check_format(path):
    """Refuse a file that is not what its name says before OpenVINO sees it (else it probes every frontend,
    which print pages to stderr, before failing)."""
    problem = None
    if path.endswith(IR_SUFFIX):
        import xml.etree.ElementTree as ET

        try:
            root = ET.parse(path).getroot()
            problem = None if root.tag == "net" else f"its root element is <{root.tag}>, not <net>"
        except ET.ParseError as exc:
            problem = f"not valid XML ({exc})"
        if problem is None and not os.path.isfile(os.path.splitext(path)[0] + ".bin"):
            problem = "its weights file (.bin) is missing"
    else:
        onnx = require("onnx", "reading an ONNX model")
        try:
            onnx.load(path, load_external_data=False)
        except Exception as exc:  # DecodeError and friends
            problem = f"not an ONNX model ({type(exc).__name__})"
    if problem:
        raise OpenVINOError(f"OpenVINO cannot read {path}: {problem}")


def int8_rest_precision():
    """What an int8 model's non-quantized operations compute in: ``bf16`` on a CPU with native bfloat16, where
    int8 with a bf16 rest ran 1.06-1.09x int8 with an f32 rest (docs/benchmarks.md), else ``f32``. Its accuracy is
    what eval.py reports for int8 beside float32."""
    return "bf16" if cpu_has_bf16() else "f32"


def inference_precision(precision):
    """OpenVINO's ``INFERENCE_PRECISION_HINT`` for one of PRECISIONS."""
    return int8_rest_precision() if precision == "int8" else precision


def compile_model(model, precision="f32", threads=None):
    """``model`` (a file, or an OpenVINO model) compiled for the CPU: ``(N, C, H, W)`` float32 -> logits,
    computing in ``precision`` (int8 models: their quantized parts in int8, the rest as ``int8_rest_precision``)."""
    if precision not in PRECISIONS:
        raise OpenVINOError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16":
        _check_bf16()
    if isinstance(model, str):
        model = read_model(model)
    config = {
        "INFERENCE_PRECISION_HINT": inference_precision(precision),
        # One synchronous request per call: LATENCY puts every thread on it. THROUGHPUT splits the cores into
        # streams that only pay off with several requests in flight (measured: batch 8 ran at half speed).
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": int(threads or os.cpu_count() or 1),
    }
    return _PerShape(model, config)


class _PerShape:
    """The model compiled once per input shape, with that shape fixed. Our export has a dynamic batch axis;
    with it OpenVINO's CPU plugin leaves the element-wise ops (residual adds, scales) as separate kernels,
    with the batch fixed it fuses them into its generated subgraphs (twins_svt_small: 49 -> 4 Eltwise nodes),
    as it does for timm's static export. A new shape (another batch size, the last partial batch) costs one
    more compile."""

    def __init__(self, model, config):
        self.model, self.config, self.compiled = model, config, {}

    def __call__(self, batch):
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        compiled = self.compiled.get(batch.shape)
        if compiled is None:
            model = self.model.clone()
            model.reshape({model.inputs[0].get_any_name(): list(batch.shape)})
            compiled = self.compiled[batch.shape] = _core().compile_model(model, "CPU", self.config)
        return compiled(batch)[0]


def save_ir(model, path):
    """Save an OpenVINO model as ``path`` (``.xml``) + ``.bin``, weights kept in float32 (not fp16)."""
    ov = _ov()
    path = os.path.splitext(path)[0] + IR_SUFFIX
    ov.save_model(model, path, compress_to_fp16=False)
    return path


def convert_onnx(onnx_path):
    """Our ONNX export as an OpenVINO model (for saving as IR or quantizing)."""
    return _ov().convert_model(onnx_path)


def calibration_batches(folder, preprocessing, batch_size=8, limit=300):
    """Up to ``limit`` images under ``folder`` (recursively, sorted) through the eval transform, batched."""
    from mszoo.data import IMG_EXTENSIONS, load_rgb_image, transforms_imagenet_eval

    if not os.path.isdir(folder):
        raise OpenVINOError(f"--calib_data: directory not found: {folder}")
    files = sorted(os.path.join(root, n) for root, _, names in os.walk(folder) for n in names
                   if n.lower().endswith(IMG_EXTENSIONS))[:limit]
    transform = transforms_imagenet_eval(**preprocessing)
    images = []
    for path in files:
        try:
            images.append(transform(load_rgb_image(path)))
        except Exception:  # an unreadable calibration image is left out
            continue
    return [np.stack(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]


def quantize_int8(model_path, calibration_batches, subset_size=300):
    """NNCF post-training int8 quantization of a float model; ``calibration_batches`` are float32 NCHW
    arrays already through the eval transform. Returns ``(quantized OpenVINO model, images used)``."""
    nncf = require("nncf", "int8 quantization")
    batches = list(calibration_batches)
    if not batches:
        raise OpenVINOError("int8: the calibration data holds no readable image")
    samples = sum(len(b) for b in batches)
    model = read_model(model_path)
    # model_type=TRANSFORMER quantizes the inputs of the matrix products only (twins_svt_small: 128 FakeQuantize
    # nodes, the default scheme 601), which OpenVINO runs 1.25-1.31x faster (docs/benchmarks.md). Its SmoothQuant
    # pass stays off: it took the tiny digits model from 55 % to 13 % top-1.
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

    no_smooth_quant = AdvancedQuantizationParameters(smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=-1))
    return nncf.quantize(model, nncf.Dataset(batches), subset_size=min(subset_size, len(batches)),
                         preset=nncf.QuantizationPreset.MIXED, model_type=nncf.ModelType.TRANSFORMER,
                         advanced_parameters=no_smooth_quant), samples
