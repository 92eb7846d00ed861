"""The train-one-step cell: forward, loss, scaled backward, unscale, all-reduce, overflow check, clip,
optimizer, EMA, loss-scale update, in that order (the order MindCV's and the model-zoo code's cells get wrong).

``TrainStep(x, y, lr)`` runs one optimizer step and returns ``(loss, overflow, scale, grad_norm)``:

1. ``loss = criterion(network(x), y)``; gradients of ``loss * scale`` (``scale`` = current loss scale);
2. with ``accumulation_steps = N > 1``, the first ``N - 1`` micro-batches only add their scaled gradients
   to buffers (``TrainStep.accumulate``); the last one adds its own and divides the sum by ``N`` (the mean
   loss over the ``N`` micro-batches, i.e. the gradient of one batch of ``N x batch_size``);
3. the mean all-reduce over devices when distributed, then unscale (divide by ``scale``; done together
   with the clipping in step 5, one pass over the gradients, skipped when the factor is always 1);
4. global gradient norm; ``overflow`` = the norm is not finite (inf/NaN anywhere);
5. on overflow the update is skipped (weights, moments, EMA and the optimizer's step count unchanged) and
   counted; otherwise gradients are clipped to ``clip_grad_norm`` (torch ``clip_grad_norm_`` semantics)
   and the optimizer applies them with the ``lr`` passed in as a Tensor, then the EMA is updated;
6. dynamic loss scale: halved on overflow (never below 1), doubled after ``scale_window`` good steps in a
   row; a static scale never changes.

``grad_norm`` is the norm before clipping (inf/NaN on overflow). The step compiles in GRAPH mode (the
``mode`` key) and runs unchanged in PyNative mode.
"""
import atexit
import os
import shutil
import tempfile

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mszoo.cpu.heap import release_free_heap

from .distributed import distributed_group_size

_square_sum = ops.MultitypeFuncGraph("square_sum")
_scale_grad = ops.MultitypeFuncGraph("scale_grad")
_add_assign = ops.MultitypeFuncGraph("add_assign")
_zero_assign = ops.MultitypeFuncGraph("zero_assign")
_add_grad = ops.MultitypeFuncGraph("add_grad")


@_square_sum.register("Tensor")
def _square_sum_one(grad):
    grad = grad.astype(ms.float32)
    return ops.reduce_sum(grad * grad)


@_scale_grad.register("Tensor", "Tensor")
def _scale_grad_one(factor, grad):
    return grad.astype(ms.float32) * factor


@_add_assign.register("Tensor", "Tensor")
def _add_assign_one(buf, grad):
    return ops.assign_add(buf, grad.astype(buf.dtype))


@_add_grad.register("Tensor", "Tensor")
def _add_grad_one(grad, buf):
    return grad.astype(ms.float32) + buf


@_zero_assign.register("Tensor")
def _zero_assign_one(buf):
    return ops.assign(buf, ops.zeros_like(buf))


# --------------------------------------------------------------------------------------------- AMP

def _norm_classes():
    from mszoo.models.layers import LayerNorm

    return [LayerNorm, nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm]


def apply_amp(network, amp_level="O0", keep_bn_fp32=True):
    """Mixed precision through MindSpore's AMP; returns the network to train (same parameter names).

    O0: unchanged (float32). O1: MindSpore's white list (Dense/Conv/MatMul..., our Linear) in float16. O2, O3:
    every cell in float16, output cast back to float32; with ``keep_bn_fp32`` the norm layers (ours and
    MindSpore's LayerNorm/BatchNorm/GroupNorm) stay float32 (O2 defaults to that; O3 with
    ``keep_bn_fp32: false`` casts them too). Parameters stay float32 in every level.
    """
    level = str(amp_level).upper()
    if level == "O0":
        return network
    if level == "O1":
        # O1 rewrites the network's source into ./rewritten_network, and graph compilation later reads that
        # source: write it to a private temporary folder that lives until the process exits.
        tmp = tempfile.mkdtemp(prefix="mszoo_amp_")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            # O1's white list matches exact classes: our Linear (a fused-op nn.Dense) joins MindSpore's list
            from mszoo.models.layers import Linear

            return ms.amp.custom_mixed_precision(network, white_list=ms.amp.get_white_list() + [Linear])
        finally:
            os.chdir(cwd)
    if level in ("O2", "O3"):
        if keep_bn_fp32:
            return ms.amp.custom_mixed_precision(network, black_list=_norm_classes())
        return ms.amp.auto_mixed_precision(network, "O3")
    raise ValueError(f"amp_level: unknown {amp_level!r}; choose one of O0, O1, O2, O3")


# ------------------------------------------------------------------------------------------ cells

class NetWithLoss(nn.Cell):
    """``(images, labels) -> loss``: the network followed by the criterion (logits cast to float32)."""

    def __init__(self, network, criterion):
        super().__init__(auto_prefix=False)
        self.network = network
        self.criterion = criterion

    def construct(self, images, labels):
        logits = self.network(images)
        return self.criterion(logits.astype(ms.float32), labels)


class _GradCell(nn.Cell):
    """Shared state of the accumulation and the step cells."""

    def __init__(self, net_with_loss, weights, accum):
        super().__init__(auto_prefix=False)
        self.net_with_loss = net_with_loss
        self.weights = weights
        self.accum = accum
        self.grad = ops.GradOperation(get_by_list=True, sens_param=True)
        self.hyper_map = ops.HyperMap()

    def scaled_grads(self, images, labels, scale):
        loss = self.net_with_loss(images, labels)
        sens = ops.fill(loss.dtype, loss.shape, 1.0) * scale.astype(loss.dtype)
        grads = self.grad(self.net_with_loss, self.weights)(images, labels, sens)
        return loss, grads


class AccumulateStep(_GradCell):
    """One micro-batch of gradient accumulation: adds its scaled gradients to the buffers."""

    def __init__(self, net_with_loss, weights, accum, scale):
        super().__init__(net_with_loss, weights, accum)
        self.scale = scale

    def construct(self, images, labels):
        loss, grads = self.scaled_grads(images, labels, self.scale)
        loss = ops.depend(loss, self.hyper_map(_add_assign, self.accum, grads))
        return loss


def _lr_tensor(lr):
    return lr if isinstance(lr, ms.Tensor) else ms.Tensor(np.float32(lr))


class TrainStep(_GradCell):
    """The train-one-step cell (see the module docstring).

    Args:
        net_with_loss: ``(images, labels) -> loss`` cell (``NetWithLoss``).
        optimizer: an ``mszoo.engine.optim.Optimizer`` over the trainable parameters.
        loss_scale: (initial) loss scale; ``dynamic_loss_scale``: halve/double it (else static).
        scale_window: good steps before the dynamic scale doubles.
        clip_grad_norm: max global norm (0/None = no clipping).
        accumulation_steps: micro-batches per optimizer step.
        ema: an ``EMA`` cell updated after every applied step, or None.
        group_size: devices for the gradient mean (default: detected from ``mindspore.communication``).
    """

    def __init__(self, net_with_loss, optimizer, loss_scale=1.0, dynamic_loss_scale=False, scale_window=1000,
                 clip_grad_norm=0.0, accumulation_steps=1, ema=None, group_size=None):
        weights = optimizer.parameters
        self.accumulation_steps = int(accumulation_steps)
        if self.accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be >= 1, got {accumulation_steps}")
        accum = weights.clone(prefix="accum", init="zeros") if self.accumulation_steps > 1 else None
        super().__init__(net_with_loss, weights, accum)
        self.optimizer = optimizer
        self.ema = ema
        self.dynamic = bool(dynamic_loss_scale)
        self.scale_window = int(scale_window)
        self.clip = float(clip_grad_norm or 0.0)
        # static scale 1, no accumulation, no clipping: gradients are used as computed
        self.unit_factor = (not self.dynamic and float(loss_scale) == 1.0 and self.accumulation_steps == 1
                            and self.clip == 0.0)
        self.loss_scale = ms.Parameter(ms.Tensor(np.float32(loss_scale)), name="loss_scale.scale",
                                       requires_grad=False)
        self.good_steps = ms.Parameter(ms.Tensor(0, ms.int32), name="loss_scale.good_steps", requires_grad=False)
        self.overflow_count = ms.Parameter(ms.Tensor(0, ms.int32), name="loss_scale.overflow_count",
                                           requires_grad=False)
        self.group_size = distributed_group_size() if group_size is None else int(group_size)
        self.reducer = (nn.DistributedGradReducer(weights, mean=True, degree=self.group_size)
                        if self.group_size > 1 else None)
        self.accumulator = (AccumulateStep(net_with_loss, weights, self.accum, self.loss_scale)
                            if self.accumulation_steps > 1 else None)
        self.square_sum = None  # the fused kernel of the gradients' sum of squares (use_square_sum_kernel)
        self.graphs_compiled = False

    def use_square_sum_kernel(self, op):
        """Compute the global gradient norm with ``op`` (``mszoo/cpu/kernels.py``'s ``square_sum``: one pass over
        every gradient instead of a Mul and a ReduceSum per parameter); None: the built-in ops. Float32 weights
        only (their gradients are what the kernel reads)."""
        if op is not None and any(w.dtype != ms.float32 for w in self.weights):
            op = None
        self.square_sum = op
        return op is not None

    # -- host-side helpers -------------------------------------------------------------------------
    def accumulate(self, images, labels):
        """Forward/backward of a non-final micro-batch (accumulation_steps > 1); returns its loss."""
        if self.accumulator is None:
            raise RuntimeError("accumulate() needs accumulation_steps > 1")
        return self.accumulator(images, labels)

    def run(self, micro_batches, lr):
        """One optimizer step over ``accumulation_steps`` ``(images, labels)`` pairs.

        Returns ``(mean loss, overflow, scale, grad_norm)`` as Python numbers.
        """
        if len(micro_batches) != self.accumulation_steps:
            raise ValueError(f"expected {self.accumulation_steps} micro-batches, got {len(micro_batches)}")
        lr = _lr_tensor(lr)
        if not self.graphs_compiled:
            self.compile_graphs(micro_batches, lr)
        losses = [float(self.accumulate(x, y).asnumpy()) for x, y in micro_batches[:-1]]
        loss, overflow, scale, norm = self(micro_batches[-1][0], micro_batches[-1][1], lr)
        losses.append(float(loss.asnumpy()))
        return float(np.mean(losses)), bool(overflow.asnumpy()), float(scale.asnumpy()), float(norm.asnumpy())

    def compile_graphs(self, micro_batches, lr):
        """GRAPH mode: compile the step's graphs before their first run and return the heap the compiler freed to
        the operating system, before the first step allocates its activations (mszoo/cpu/heap.py)."""
        lr = _lr_tensor(lr)
        if ms.get_context("mode") == ms.GRAPH_MODE:
            if self.accumulator is not None:
                self.accumulator.compile(*micro_batches[0])
            self.compile(*micro_batches[-1], lr)
            release_free_heap()
        self.graphs_compiled = True

    def state_parameters(self):
        """Loss-scale state Parameters, for checkpoints."""
        return [self.loss_scale, self.good_steps, self.overflow_count]

    # -- the compiled step -------------------------------------------------------------------------
    def construct(self, images, labels, lr):
        scale = self.loss_scale * 1.0
        loss, grads = self.scaled_grads(images, labels, scale)
        factor = 1.0 / scale
        if self.accumulation_steps > 1:
            grads = self.hyper_map(_add_grad, grads, self.accum)
            grads = ops.depend(grads, self.hyper_map(_zero_assign, self.accum))
            factor = factor / self.accumulation_steps
        if self.reducer is not None:
            grads = self.reducer(grads)  # a mean: commutes with the unscaling below
        # The norm of the unscaled gradients is the scaled norm times the factor, so unscaling and clipping
        # happen in one pass over the gradients (none at all when the factor is always 1).
        grad_norm = ops.sqrt(self._sum_of_squares(grads)) * factor
        overflow = ops.logical_not(ops.isfinite(grad_norm))
        if not overflow:
            if self.clip > 0.0:
                factor = factor * ops.minimum(self.clip / (grad_norm + 1e-6), 1.0)
            if not self.unit_factor:
                grads = self.hyper_map(ops.Partial()(_scale_grad, factor), grads)
            applied = self.optimizer(grads, lr)
            if self.ema is not None:
                applied = ops.depend(self.ema(), applied)
            loss = ops.depend(loss, applied)
        loss = ops.depend(loss, self._update_scale(overflow, scale))
        return loss, overflow, scale, grad_norm

    def _sum_of_squares(self, grads):
        if self.square_sum is None:
            return ops.addn(self.hyper_map(_square_sum, grads))
        return self.square_sum(*grads).reshape(())

    def _update_scale(self, overflow, scale):
        count = ops.assign_add(self.overflow_count, overflow.astype(ms.int32))
        if not self.dynamic:
            return count
        good = self.good_steps + 1
        grow = good >= self.scale_window
        lowered = ops.maximum(scale * 0.5, 1.0)
        new_scale = ops.select(overflow, lowered, ops.select(grow, scale * 2.0, scale))
        new_good = ops.select(overflow, ops.zeros_like(good), ops.select(grow, ops.zeros_like(good), good))
        out = ops.assign(self.loss_scale, new_scale)
        out = ops.depend(out, ops.assign(self.good_steps, new_good))
        return ops.depend(out, count)


def build_train_step(network, criterion, optimizer, cfg, ema=None, group_size=None, fused_kernels=None):
    """``TrainStep`` from the config keys (loss scale, clipping, accumulation); ``network`` already AMP'd.
    ``fused_kernels``: see ``mszoo.cpu.kernels.use_fused_kernels``."""
    from mszoo.cpu.kernels import use_fused_kernels

    kernels = use_fused_kernels(network, fused_kernels)
    clip = cfg.clip_grad_norm if cfg.use_clip_grad_norm else 0.0
    step = TrainStep(NetWithLoss(network, criterion), optimizer, loss_scale=cfg.loss_scale,
                     dynamic_loss_scale=cfg.is_dynamic_loss_scale, scale_window=cfg.loss_scale_window,
                     clip_grad_norm=clip, accumulation_steps=cfg.accumulation_steps, ema=ema,
                     group_size=group_size)
    if kernels:
        from mszoo.cpu.kernels import fused_ops, kernel_library

        step.use_square_sum_kernel(fused_ops(kernel_library())["square_sum"])
    step.set_train(True)
    return step
