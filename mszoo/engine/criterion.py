"""Losses: cross entropy with label smoothing (hard labels) and soft-target cross entropy (mixup/cutmix).

``ClassificationLoss`` picks the formula from the labels it receives: integer class indices of shape
``(N,)`` use label smoothing, float targets of shape ``(N, C)`` (mixup/cutmix output, smoothing already
folded in) use soft-target cross entropy. The choice depends only on the static rank of the labels, so
the compiled graph has no branch at run time. The mean over the batch is returned, as timm's
``LabelSmoothingCrossEntropy`` / ``SoftTargetCrossEntropy``.
"""
import mindspore as ms
from mindspore import nn, ops


class ClassificationLoss(nn.Cell):
    """``(logits (N, C), labels (N,) int or (N, C) float) -> scalar`` mean loss in float32."""

    def __init__(self, label_smoothing=0.0):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.smoothing = float(label_smoothing)
        self.confidence = 1.0 - self.smoothing

    def construct(self, logits, labels):
        logp = ops.log_softmax(logits.astype(ms.float32), axis=-1)
        if labels.ndim == 2:
            return ops.mean(ops.sum(-labels.astype(ms.float32) * logp, dim=-1))
        num_classes = logits.shape[-1]
        onehot = ops.one_hot(labels.astype(ms.int32), num_classes, ops.ones((), ms.float32),
                             ops.zeros((), ms.float32))
        nll = -ops.sum(onehot * logp, dim=-1)
        if self.smoothing == 0.0:
            return ops.mean(nll)
        smooth = -ops.mean(logp, axis=-1)
        return ops.mean(self.confidence * nll + self.smoothing * smooth)


def create_criterion(cfg):
    """The training loss: label smoothing from ``cfg.label_smoothing`` (mixup targets carry their own)."""
    return ClassificationLoss(cfg.label_smoothing)
