"""The classification head and the classifier API every family shares (timm's ``get_classifier`` /
``reset_classifier``)."""
from mindspore import nn

from .linear import Linear
from .weight_init import init_weights_vit


def classifier_head(in_features, num_classes, std=0.02, init=True, bias=True):
    """The classification head timm builds: a Linear (truncated-normal weights, zero bias), or Identity
    when ``num_classes`` is 0 (the model then returns pooled features). A model constructor passes
    ``init=False``: its own initialisation pass over all cells covers the head. ``bias=False``: no bias (the
    model-zoo readmes' TNT code)."""
    if num_classes <= 0:
        return nn.Identity()
    head = Linear(in_features, num_classes, has_bias=bias)
    if init:
        init_weights_vit(head, std=std)
    return head


class ClassifierMixin:
    """``get_classifier`` / ``reset_classifier`` for a model with ``head``, ``num_features`` and ``global_pool``.

    A family lists the pooling modes it supports in ``GLOBAL_POOLS`` (the first is its default) and may
    explain the rule in ``POOL_NOTE``; the constructor checks its argument with ``check_pool``.
    """

    GLOBAL_POOLS = ("",)
    head_bias = True  # a model whose head has no bias sets False, and so do its new heads
    POOL_NOTE = ""

    @classmethod
    def check_pool(cls, global_pool):
        if global_pool not in cls.GLOBAL_POOLS:
            choices = ", ".join(repr(p) for p in cls.GLOBAL_POOLS)
            raise ValueError(f"{cls.POOL_NOTE}global_pool must be one of {choices}, got {global_pool!r}")

    def get_classifier(self):
        return self.head

    def reset_classifier(self, num_classes, global_pool=None):
        """A new head for ``num_classes`` (0: Identity, the model returns pooled features), in the model's
        current train/eval mode; MindSpore prefixes its parameters with ``head.``."""
        self.num_classes = num_classes
        if global_pool is not None:
            self.check_pool(global_pool)
            self.global_pool = global_pool
        self.head = classifier_head(self.num_features, num_classes, bias=self.head_bias)
        self.head.set_train(self.training)
