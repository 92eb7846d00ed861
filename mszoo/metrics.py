"""Classification metrics shared by eval.py on checkpoints (engine) and on exported files (deploy).

Counts are summed (correct top-1/top-5, loss sum, samples) and divided once at the end, so sharded
or batched evaluation gives the same numbers as one pass over every sample.
"""
import json

import numpy as np

from mszoo.fileio import atomic_open


class ClassificationMeter:
    """Accumulates loss sum and top-1/top-5 correct counts from ``(logits, labels)`` batches."""

    def __init__(self):
        self.loss_sum = 0.0
        self.top1 = 0
        self.top5 = 0
        self.count = 0

    def update(self, logits, labels):
        logits = np.asarray(logits, dtype=np.float64)
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.loss_sum += float(-log_probs[np.arange(len(labels)), labels].sum())
        k = min(5, logits.shape[1])
        topk = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        self.top1 += int((topk[:, 0] == labels).sum())
        self.top5 += int((topk == labels[:, None]).any(axis=1).sum())
        self.count += len(labels)

    def result(self):
        return results_from_counts(self.loss_sum, self.top1, self.top5, self.count)


def results_from_counts(loss_sum, correct1, correct5, count):
    """The metrics dict from summed counts: mean loss, top-1/top-5 in percent, sample count."""
    n = max(int(round(count)), 1)
    return {"loss": round(loss_sum / n, 6), "top1": round(100.0 * correct1 / n, 4),
            "top5": round(100.0 * correct5 / n, 4), "num_samples": int(round(count))}


def format_results(results):
    """The one line eval.py prints: ``eval results: {'loss': ..., 'top1': ..., 'top5': ..., 'num_samples': ...}``."""
    ordered = {k: results[k] for k in ("loss", "top1", "top5", "num_samples")}
    return f"eval results: {ordered}"


def write_results(results, path):
    """The results as JSON, written atomically (the four metrics first, then any extra entries such as a
    reduced-precision run's ``precision``, ``f32`` and ``top1_agreement``)."""
    import os

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    metrics = ("loss", "top1", "top5", "num_samples")
    with atomic_open(path) as f:
        json.dump(dict({k: results[k] for k in metrics}, **{k: v for k, v in results.items() if k not in metrics}),
                  f, indent=1)


def softmax(logits):
    logits = np.asarray(logits, dtype=np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
