"""Validation: top-1 / top-5 / loss over every sample of the val split exactly once.

Counts are summed (correct top-1, correct top-5, summed loss, samples) and, in distributed runs, the sums
are all-reduced before dividing, so accuracies are never averages of per-rank accuracies. The eval
dataset keeps its last partial batch. Accuracies are percentages (0-100), as timm reports them; the
loss is plain cross entropy (no label smoothing).

``eval.py`` (``evaluate_checkpoint``) prints one line
``eval results: {'loss': ..., 'top1': ..., 'top5': ..., 'num_samples': ...}`` and, with ``--output``,
writes the same dict as JSON.
"""

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mszoo.config import ConfigError, source_of, validate
from mszoo.logger import get_logger
from mszoo.metrics import format_results, results_from_counts, write_results

from .datasets import one_pass


class EvalNet(nn.Cell):
    """``(images, labels) -> (summed loss, top-1 correct, top-5 correct)`` for one batch."""

    def __init__(self, network, topk=5):
        super().__init__(auto_prefix=False)
        self.network = network
        self.topk = int(topk)

    def construct(self, images, labels):
        logits = self.network(images).astype(ms.float32)
        labels = labels.astype(ms.int32)
        logp = ops.log_softmax(logits, axis=-1)
        num_classes = logits.shape[-1]
        onehot = ops.one_hot(labels, num_classes, ops.ones((), ms.float32), ops.zeros((), ms.float32))
        loss_sum = -ops.sum(onehot * logp)
        k = min(self.topk, num_classes)
        _, idx = ops.topk(logits, k)
        hits = ops.equal(idx, labels.reshape(-1, 1)).astype(ms.float32)
        correct1 = ops.sum(hits[:, 0])
        correct5 = ops.sum(hits)
        return loss_sum, correct1, correct5


class _AllReduceSum(nn.Cell):
    """Sum across devices inside a compiled graph (the PyNative ``comm_func.all_reduce`` has no CPU kernel)."""

    def __init__(self):
        super().__init__()
        self.all_reduce = ops.AllReduce(ops.ReduceOp.SUM)

    @ms.jit
    def construct(self, x):
        return self.all_reduce(x)


def _all_reduce_sum(values, group_size):
    """Sum the counts (loss sum, correct top-1/top-5, samples) over all devices: never average accuracies."""
    if group_size <= 1:
        return values
    out = _AllReduceSum()(ms.Tensor(np.asarray(values, np.float64).astype(np.float32)))
    return [float(v) for v in out.asnumpy()]


def padded_batch(images, labels, batch_size):
    """A partial batch padded to ``batch_size`` with zero images labelled -1, so every batch has one shape and
    evaluation compiles one graph (a partial batch would compile a second, in every run, and MindSpore's compile
    cache would hand it to another split's last batch). A -1 label adds nothing: its one-hot row is zeros and no
    class index equals it."""
    count = labels.shape[0]
    if batch_size is None or count >= batch_size:
        return images, labels
    x, y = images.asnumpy(), labels.asnumpy()
    x = np.concatenate([x, np.zeros((batch_size - count,) + x.shape[1:], x.dtype)])
    y = np.concatenate([y, np.full((batch_size - count,) + y.shape[1:], -1, y.dtype)])
    return ms.Tensor(x), ms.Tensor(y)


def evaluate(eval_net, dataset, group_size=1, should_stop=None):
    """Run ``eval_net`` (an ``EvalNet``) over one pass of ``dataset``, a dataset or a ``KeptLoader`` (its last
    batch padded to ``dataset.batch_size``: :func:`padded_batch`); returns the results dict, or None if stopped."""
    eval_net.set_train(False)
    sums = np.zeros(4, np.float64)  # loss, correct1, correct5, samples
    with one_pass(dataset) as batches:
        for images, labels in batches:
            count = labels.shape[0]
            loss_sum, c1, c5 = eval_net(*padded_batch(images, labels, getattr(dataset, "batch_size", None)))
            sums += (float(loss_sum.asnumpy()), float(c1.asnumpy()), float(c5.asnumpy()), count)
            if should_stop is not None and should_stop():
                return None
    loss, c1, c5, n = _all_reduce_sum(list(sums), group_size)
    return results_from_counts(loss, c1, c5, n)


# --------------------------------------------------------------------------------------------- eval.py

def evaluate_checkpoint(cfg, output=None):
    """``eval.py --pretrained CKPT``: evaluate a checkpoint on the val split; returns the exit code.

    The model, classes and preprocessing come from the checkpoint's record unless given (mszoo/resolve.py);
    the data location, batch size and other keys left at their defaults come from the config saved in a
    training checkpoint, so ``python eval.py --pretrained run/best.ckpt`` needs nothing else. A training
    checkpoint with EMA weights is evaluated with them (they were validated and chose the best checkpoint).
    """
    from mszoo.cpu.kernels import use_fused_kernels
    from mszoo.resolve import load_eval_model, pretrained_file, resolve_from_checkpoint

    from .checkpoint import load_training_checkpoint
    from .datasets import build_eval_dataset, take_saved_config

    if not cfg.pretrained:
        raise ConfigError("pretrained: give the checkpoint to evaluate (--pretrained FILE.ckpt) (from command line)")
    ckpt = load_training_checkpoint(pretrained_file(cfg))
    class_names = resolve_from_checkpoint(cfg, ckpt)
    take_saved_config(cfg, ckpt)
    validate(cfg, need_data=True, need_train_data=False)
    dataset = build_eval_dataset(cfg, class_names=class_names)
    if len(dataset.class_names) > cfg.num_classes:
        raise ConfigError(f"num_classes: the model has {cfg.num_classes} classes, {dataset.directory} has "
                          f"{len(dataset.class_names)} class folders (from {source_of(cfg, 'num_classes')})")
    model, which = load_eval_model(cfg, ckpt)
    use_fused_kernels(model)  # on CPU: Twins' PEG and the unfolds run their kernels, so no convolution is left
    get_logger().info(f"evaluating {which} of {ckpt.path} ({cfg.arch}) on {dataset.directory} "
                      f"({dataset.num_files} images, batch {cfg.batch_size})")
    results = evaluate(EvalNet(model), dataset)
    print(format_results(results), flush=True)
    if output:
        write_results(results, output)
    return 0
