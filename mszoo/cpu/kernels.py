"""Fused CPU kernels for LayerNorm, exact GELU (forward and backward), a transpose that swaps two groups of
axes, softmax's backward, a bias gradient, Twins' PEG, an unfold (im2col), DropPath's per-sample scale and the
gradients' global sum of squares, as MindSpore AOT custom ops.

MindSpore's CPU ``LayerNormGrad`` and ``Erf`` (GELU) are several times slower than PyTorch's at a ViT's shapes
(docs/benchmarks.md). ``fused_cpu.cc`` computes each direction of each in one pass;
the swap-axes kernel replaces CPU ``Transpose``, which keeps an index per element for the graph's life
(``mszoo/cpu/transpose.py``); softmax's backward replaces a ReduceSum, a BroadcastTo, a Sub and two Muls
(``mszoo/cpu/lean_ops.py``), the column sum the ReduceSum of a bias gradient; the PEG (a depthwise 3x3
convolution plus its input, on the tokens' channels-last layout) replaces a transpose to NCHW, oneDNN's NCHW
depthwise convolution (a reference kernel wherever AVX-512 is allowed: ``mszoo/cpu/onednn.py``) and the
transpose back, forward and backward; the sum of squares replaces a Mul and a ReduceSum per parameter in the
train step's gradient norm (``TrainStep.use_square_sum_kernel``; 363 pairs in TNT-S), the per-sample scale
DropPath's broadcast mask and Mul, forward and backward, and the unfold the Pad, transpose, slices and
concatenations of TNT's pixel embedding and T2T-ViT's soft splits (``mszoo/models/layers/unfold.py: UnfoldRows``).

The library is built on first use with the system compiler (``$CXX``, else ``g++``) and cached under
``$MSZOO_KERNEL_CACHE`` (default ``$MSZOO_CACHE/kernels``), named by a hash of the source, the compiler command
and version, the flags and MindSpore's version; it is built into a temporary file and renamed, so concurrent
workers never see half a library, and a cached file whose SHA-256 is not the one recorded beside it at build
time is rebuilt. No compiler, a failed build or a refused library: one note, and the built-in ops.
``build_in_background()`` starts the build on a thread (train.py, so the compiler runs while the data and the
model are set up).

``set_fused_kernels(model)`` switches every ``FusedKernelUser`` cell of a model to the kernels (LayerNorm, GELU,
Permute, SplitHeads, Softmax, BiasAdd2D, PosConv, UnfoldRows, MulBySampleMask). The rule of when they run has one
home, ``FusedKernelUser.use_kernel``: in training (``cell.training``; PosConv and UnfoldRows also in evaluation) on
float32 tensors only, so the other cells in evaluation, export (``builtin_ops``) and AMP's float16/bfloat16 keep
the built-in ops. ``MSZOO_FUSED_KERNELS`` (``1``/``0``) says whether training and MindSpore evaluation use them on
CPU; ``MSZOO_KERNEL_THREADS`` (default 1, read by the kernels at each call) how many threads they use.
"""
import concurrent.futures
import contextlib
import functools
import hashlib
import logging
import os
import shlex
import shutil
import subprocess

import mindspore as ms
from mindspore import nn

from mszoo.constants import cache_dir
from mszoo.fileio import atomic_open, sha256_file, written_as

LOGGER_NAME = "mszoo"  # mszoo.logger's logger (the backend imports nothing from the rest of mszoo)
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fused_cpu.cc")
FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-pthread")
ENV_SWITCH = "MSZOO_FUSED_KERNELS"
DEFAULT_ON = True
_BUILD_TIMEOUT_S = 300


class KernelBuildError(RuntimeError):
    """The kernel library could not be built or loaded (the message is the note's reason)."""


def fused_kernels_wanted():
    """Whether CPU training uses the fused kernels: ``MSZOO_FUSED_KERNELS`` (``0``/``1``), else the default."""
    value = os.environ.get(ENV_SWITCH, "").strip().lower()
    if value in ("", "auto"):
        return DEFAULT_ON
    return value not in ("0", "false", "off", "no")


def fused_kernels_expected():
    """Whether training here will run the fused kernels, known before the library is built: they are wanted
    (``fused_kernels_wanted``) and the compiler is on the PATH. A build that fails later still falls back to the
    built-in ops, with its note."""
    return fused_kernels_wanted() and shutil.which(_compiler()[0]) is not None


def kernel_cache_dir():
    return os.path.expanduser(os.environ.get("MSZOO_KERNEL_CACHE") or os.path.join(cache_dir(), "kernels"))


def _compiler():
    """``$CXX`` split as a shell would (``ccache g++`` works), else ``g++``."""
    return shlex.split(os.environ.get("CXX") or "") or ["g++"]


def _compiler_version(cxx):
    try:
        done = subprocess.run([*cxx, "--version"], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise KernelBuildError(f"no C++ compiler ({cxx[0]}: {type(exc).__name__})") from None
    return done.stdout.strip()


def library_key(cxx):
    """Hash of what the built library depends on: source, compiler command and version, flags, MindSpore."""
    import mindspore as ms

    with open(SOURCE, "rb") as f:
        source = f.read()
    parts = [source, " ".join(cxx).encode(), _compiler_version(cxx).encode(), " ".join(FLAGS).encode(),
             ms.__version__.encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:20]


def _is_valid(path):
    """The cached library is the one built here: its SHA-256 matches the record written beside it."""
    try:
        with open(path + ".sha256", encoding="ascii") as f:
            recorded = f.read().strip()
        return recorded == sha256_file(path)
    except OSError:
        return False


def _build(cxx, target):
    """Compile SOURCE into ``target`` through a temporary file in the same directory, then rename."""
    try:
        with written_as(target) as tmp:
            done = subprocess.run([*cxx, *FLAGS, SOURCE, "-o", tmp], capture_output=True, text=True,
                                  timeout=_BUILD_TIMEOUT_S)
            if done.returncode != 0:
                first = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[0]
                raise KernelBuildError(f"{cxx[0]} failed: {first}")
            with atomic_open(target + ".sha256", encoding="ascii") as f:  # the record first, then the library
                f.write(sha256_file(tmp))
    except (OSError, subprocess.SubprocessError) as exc:
        raise KernelBuildError(f"{cxx[0]} could not build the kernels ({type(exc).__name__}: {exc})") from None


def build_library():
    """Path of the kernel library, built (or rebuilt, when the cached file is not ours) if needed."""
    cxx = _compiler()
    if shutil.which(cxx[0]) is None:
        raise KernelBuildError(f"no C++ compiler ({cxx[0]} not found; set CXX)")
    directory = kernel_cache_dir()
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise KernelBuildError(f"cannot create {directory}: {exc.strerror}") from None
    target = os.path.join(directory, f"fused_cpu-{library_key(cxx)}.so")
    for _ in range(2):  # a second time when another worker replaced one of the two files meanwhile
        if _is_valid(target):
            return target
        _build(cxx, target)
    if not _is_valid(target):
        raise KernelBuildError(f"{target} changes while it is being built (another process?)")
    return target


_background_build = None  # the Future of build_library() that build_in_background() started


def build_in_background():
    """Start :func:`build_library` on a thread when training will want the kernels; :func:`kernel_library`
    takes its result. A first run's build (~3 s) then overlaps the set-up instead of delaying the first step."""
    global _background_build
    if _background_build is None and fused_kernels_wanted():
        builder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mszoo-kernel-build")
        _background_build = builder.submit(build_library)
        builder.shutdown(wait=False)


@functools.cache
def kernel_library():
    """The built library's path, or None after one note (no compiler, failed build, or MindSpore refusing
    the library's directory through MS_CUSTOM_AOT_WHITE_LIST). Once per process."""
    try:
        path = _background_build.result() if _background_build is not None else build_library()
        fused_ops(path)
        return path
    except (KernelBuildError, TypeError) as exc:
        logging.getLogger(LOGGER_NAME).info(
            "note: fused CPU kernels unavailable (%s); MindSpore's built-in ops run instead", exc)
        return None


def _layer_norm_ops(path):
    """(forward, backward) Custom ops: forward(x, w, b, eps) -> (y, mean, rstd), with its gradient."""
    from mindspore import ops

    backward = ops.Custom(f"{path}:MszooLayerNormBackward", func_type="aot",
                          out_shape=lambda dy, x, mean, rstd, w: (x, w, w),
                          out_dtype=lambda dy, x, mean, rstd, w: (x, w, w))

    def bprop(x, w, b, eps, out, dout):
        dx, dw, db = backward(dout[0], x, out[1], out[2], w)
        return dx, dw, db, ops.zeros_like(eps)

    forward = ops.Custom(f"{path}:MszooLayerNormForward", func_type="aot",
                         out_shape=lambda x, w, b, eps: (x, x[:-1], x[:-1]),
                         out_dtype=lambda x, w, b, eps: (x, x, x), bprop=bprop)
    return forward, backward


def _gelu_ops(path):
    """(forward(x) -> y, backward(x, dy) -> dx) Custom ops; GELU's cell bprop calls the backward."""
    from mindspore import ops

    forward = ops.Custom(f"{path}:MszooGeluForward", func_type="aot", out_shape=lambda x: x,
                         out_dtype=lambda x: x)
    backward = ops.Custom(f"{path}:MszooGeluBackward", func_type="aot", out_shape=lambda x, dy: x,
                          out_dtype=lambda x, dy: x)
    return forward, backward


def _swap_axes_op(path):
    """``(A, B, C, D)`` -> ``(A, C, B, D)`` (``mszoo/cpu/transpose.py``); its gradient is the same swap back."""
    from mindspore import ops

    def out_shape(x):
        return (x[0], x[2], x[1], x[3])

    swap_back = ops.Custom(f"{path}:MszooSwapAxes", func_type="aot", out_shape=out_shape,
                           out_dtype=lambda x: x)

    def bprop(x, out, dout):
        return (swap_back(dout),)

    return ops.Custom(f"{path}:MszooSwapAxes", func_type="aot", out_shape=out_shape, out_dtype=lambda x: x,
                      bprop=bprop)


def _softmax_grad_op(path):
    """``(y, dy) -> dx``: softmax's gradient over the last axis (``y`` the softmax's output)."""
    from mindspore import ops

    return ops.Custom(f"{path}:MszooSoftmaxBackward", func_type="aot", out_shape=lambda y, dy: y,
                      out_dtype=lambda y, dy: y)


def _column_sum_op(path):
    """``(R, C) -> (C)``: the sum over rows (a bias's gradient)."""
    from mindspore import ops

    return ops.Custom(f"{path}:MszooColumnSum", func_type="aot", out_shape=lambda x: x[1:],
                      out_dtype=lambda x: x)


def _peg_op(path):
    """``(x, kernel, bias) -> y``: Twins' PEG on a channels-last token map ``x`` (B, H, W, C), ``x + bias + ``
    the depthwise 3x3 convolution of ``x`` by ``kernel`` (C, 1, 3, 3), stride 1, zero padding 1; its gradient is
    one Custom op too."""
    from mindspore import ops

    backward = ops.Custom(f"{path}:MszooPegBackward", func_type="aot",
                          out_shape=lambda dy, x, kernel: (x, kernel, kernel[:1]),
                          out_dtype=lambda dy, x, kernel: (x, kernel, kernel))

    def bprop(x, kernel, bias, out, dout):
        return backward(dout, x, kernel)

    return ops.Custom(f"{path}:MszooPegForward", func_type="aot", out_shape=lambda x, kernel, bias: x,
                      out_dtype=lambda x, kernel, bias: x, bprop=bprop)


def _unfold_op_maker(path):
    """``make(kh, kw, sh, sw, ph, pw)``: the Custom op ``(x (B, C, H, W), geometry) -> rows (B, H' * W', C * kh *
    kw)``, torch's ``Unfold`` with zero padding and each window a row; ``geometry`` is the six numbers as a
    float32 tensor (the kernel's only way to read them). One op per geometry (its output shape depends on it);
    its gradient, one Custom op too, adds each window's values back to the pixels they came from."""
    from mindspore import ops

    backward = ops.Custom(f"{path}:MszooUnfoldBackward", func_type="aot", out_shape=lambda drows, x, geometry: x,
                          out_dtype=lambda drows, x, geometry: x)

    def bprop(x, geometry, out, dout):
        return backward(dout, x, geometry), ops.zeros_like(geometry)

    @functools.cache
    def make(kh, kw, sh, sw, ph, pw):
        def out_shape(x, geometry):
            oh, ow = (x[2] + 2 * ph - kh) // sh + 1, (x[3] + 2 * pw - kw) // sw + 1
            return (x[0], oh * ow, x[1] * kh * kw)

        return ops.Custom(f"{path}:MszooUnfoldForward", func_type="aot", out_shape=out_shape,
                          out_dtype=lambda x, geometry: x, bprop=bprop)

    return make


def _sample_scale_op(path):
    """``(x (B, ...), scale (B, 1, ..., 1)) -> x * scale``, each sample scaled by its own factor (DropPath's
    mask); ``MulBySampleMask`` writes its gradient with the same op."""
    from mindspore import ops

    return ops.Custom(f"{path}:MszooSampleScale", func_type="aot", out_shape=lambda x, scale: x,
                      out_dtype=lambda x, scale: x)


def _square_sum_op(path):
    """``(*tensors) -> (1,)``: the sum of the squares of every element of every tensor (the global gradient
    norm's square), in one pass; no gradient."""
    from mindspore import ops

    return ops.Custom(f"{path}:MszooSquareSum", func_type="aot", out_shape=lambda *shapes: (1,),
                      out_dtype=lambda *dtypes: dtypes[0])


@functools.cache
def fused_ops(path):
    """The Custom ops of the library at ``path``, shared by every cell, by kind (``FusedKernelUser.fused_kind``)."""
    return {"layer_norm": _layer_norm_ops(path), "gelu": _gelu_ops(path), "swap_axes": _swap_axes_op(path),
            "softmax_grad": _softmax_grad_op(path), "column_sum": _column_sum_op(path), "peg": _peg_op(path),
            "unfold": _unfold_op_maker(path), "sample_scale": _sample_scale_op(path),
            "square_sum": _square_sum_op(path)}


class FusedKernelUser(nn.Cell):
    """A cell with a fused-kernel formulation of kind ``fused_kind`` (a key of ``fused_ops``).

    ``set_fused_kernels`` hands it its op (``use_fused_ops``); ``use_kernel(x)`` is the one rule of when the
    kernels run: in training (and in evaluation for a cell whose ``in_inference`` is True), on float32 tensors,
    when given. Everything else (evaluation of the other cells, export: ``builtin_ops``, AMP's float16/bfloat16,
    GPU/Ascend, no compiler) computes the built-in ops."""

    fused_kind = None
    in_inference = False  # True: the kernel also runs in evaluation (its forward equals the built-in op's)

    def __init__(self):
        super().__init__()
        self.fused = None

    def use_fused_ops(self, ops_by_kind):
        """Use ``ops_by_kind[self.fused_kind]`` where ``use_kernel`` says (None: the built-in ops)."""
        self.fused = None if ops_by_kind is None else ops_by_kind[self.fused_kind]

    def use_kernel(self, x):
        return (self.training or self.in_inference) and self.fused is not None and x.dtype == ms.float32


def kernels_in_use(model):
    """True when some ``FusedKernelUser`` cell of ``model`` has been given its kernel."""
    return any(isinstance(cell, FusedKernelUser) and cell.fused is not None for _, cell in model.cells_and_names())


@contextlib.contextmanager
def builtin_ops(model):
    """``model`` on the built-in ops inside the block (an export: the exported graph has no custom op), its
    kernels given back after it."""
    had = kernels_in_use(model)
    set_fused_kernels(model, False)
    try:
        yield model
    finally:
        if had:
            set_fused_kernels(model, True)


def use_fused_kernels(model, enabled=None):
    """On a CPU device, ``set_fused_kernels(model)`` when ``enabled`` (None: ``MSZOO_FUSED_KERNELS``, else the
    default): the training step's model, the trainer's evaluation copy, and the models ``eval.py`` / ``infer.py``
    run with MindSpore (in evaluation only the cells with ``in_inference`` use them: Twins' PEG, the unfolds).
    GPU/Ascend keep the built-in ops. Returns True when the kernels are in use."""
    if enabled is None:
        enabled = fused_kernels_wanted()
    return set_fused_kernels(model, enabled and ms.get_context("device_target") == "CPU")


def set_fused_kernels(model, enabled=True):
    """Switch every ``FusedKernelUser`` cell of ``model`` to the kernels, or back.

    Returns True when the kernels are in use (False after the one note when they cannot be built)."""
    ops_by_kind = None
    if enabled:
        path = kernel_library()
        if path is None:
            enabled = False
        else:
            ops_by_kind = fused_ops(path)
    for _, cell in model.cells_and_names():
        if isinstance(cell, FusedKernelUser):
            cell.use_fused_ops(ops_by_kind)
    return enabled
