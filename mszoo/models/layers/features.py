"""Backbone use of a model: which intermediates to take, their description, and the ``features_only`` wrapper.

timm's meaning throughout (``timm/models/_features.py``): a model has ``forward_intermediates(x, indices, norm,
output_fmt, intermediates_only)``, ``prune_intermediate_layers(indices, prune_norm, prune_head)`` and a
``feature_info`` list (one dict per tap: ``module``, ``num_chs``, ``reduction``); ``features_only=True`` wraps it
in :class:`FeatureGetterNet`, which prunes what no output needs and returns the chosen maps.
"""
from mindspore import nn

from .layout import TokensToMap

OUTPUT_FORMATS = ("NCHW", "NLC")


def feature_take_indices(num_features, indices=None):
    """``(take_indices, max_index)`` as timm's: None takes all, an int ``n`` the last ``n``, a sequence the indices
    it names (negative ones from the end). Out of range is a ValueError."""
    if indices is None:
        indices = num_features
    if isinstance(indices, int):
        if not 0 < indices <= num_features:
            raise ValueError(f"last-n ({indices}) is out of range (1 to {num_features})")
        take = [num_features - indices + i for i in range(indices)]
    else:
        take = []
        for i in indices:
            idx = num_features + i if i < 0 else i
            if not 0 <= idx < num_features:
                raise ValueError(f"feature index {idx} is out of range (0 to {num_features - 1})")
            take.append(idx)
    if not take:
        raise ValueError("no feature index given")
    return take, max(take)


def check_output_fmt(output_fmt, allowed=OUTPUT_FORMATS):
    if output_fmt not in allowed:
        raise ValueError(f"output_fmt must be one of {', '.join(allowed)}, got {output_fmt!r}")


def prune_block_stack(model, indices=1, prune_norm=False, prune_head=True):
    """timm's ``prune_intermediate_layers`` for a model whose trunk is one stack of ``blocks`` then ``norm``
    (TNT, T2T-ViT): drop the blocks after the last of ``indices``, the final norm (``prune_norm``) and the
    classifier (``prune_head``); returns the absolute indices."""
    take_indices, max_index = feature_take_indices(len(model.blocks), indices)
    model.blocks = model.blocks[:max_index + 1]
    if prune_norm:
        model.norm = nn.Identity()
    if prune_head:
        model.reset_classifier(0, "")
    return take_indices


class FeatureInfo:
    """The taps a features model returns: ``info`` (every tap of the model) and ``out_indices`` (the ones
    returned, in order). ``channels()`` / ``reduction()`` / ``module_name()`` give one value per output, as
    timm's ``FeatureInfo``; ``len`` and iteration run over the outputs' dicts."""

    def __init__(self, info, out_indices):
        prev = 1
        for i, tap in enumerate(info):
            if tap["num_chs"] <= 0 or tap["reduction"] < prev:
                raise ValueError(f"feature tap {i} {tap}: channels must be > 0 and reductions non-decreasing")
            prev = tap["reduction"]
        self.info = [dict(tap, index=i) for i, tap in enumerate(info)]
        self.out_indices = tuple(out_indices)

    def get(self, key, idx=None):
        if idx is None:
            return [self.info[i][key] for i in self.out_indices]
        if isinstance(idx, (tuple, list)):
            return [self.info[i][key] for i in idx]
        return self.info[idx][key]

    def channels(self, idx=None):
        return self.get("num_chs", idx)

    def reduction(self, idx=None):
        return self.get("reduction", idx)

    def module_name(self, idx=None):
        return self.get("module", idx)

    def get_dicts(self):
        return [dict(self.info[i]) for i in self.out_indices]

    def __getitem__(self, item):
        return self.get_dicts()[item]

    def __len__(self):
        return len(self.out_indices)

    def __iter__(self):
        return iter(self.get_dicts())


class FeatureGetterNet(nn.Cell):
    """``features_only=True``: ``(N, C, H, W)`` -> a list of maps, the model's ``forward_intermediates`` at
    ``out_indices`` (timm's ``FeatureGetterNet``).

    The model is pruned first (blocks after the last output, the classifier, and the final norm unless
    ``norm``), so a classifier's weights are simply not part of it. ``auto_prefix=False``: the parameters keep
    the model's names (``blocks.0...``), so a checkpoint of the features model reads like the model's.
    ``forward_intermediates`` returns maps in block order whatever the order of ``indices`` (timm's too), so
    ``out_indices`` must name increasing taps (negative ones counted from the end): in another order
    ``feature_info`` would describe other maps than the ones returned (timm's would), which is refused.
    """

    def __init__(self, model, out_indices, norm=False, output_fmt="NCHW"):
        super().__init__(auto_prefix=False)
        check_output_fmt(output_fmt)
        take, _ = feature_take_indices(len(model.feature_info), out_indices)
        if any(b <= a for a, b in zip(take, take[1:])):
            raise ValueError(f"out_indices {out_indices} name the taps {take}: they must increase (the maps come in "
                             "block order)")
        self.out_indices = tuple(model.prune_intermediate_layers(out_indices, prune_norm=not norm, prune_head=True))
        self.feature_info = FeatureInfo(model.feature_info, self.out_indices)
        self.model = model
        self.norm = norm
        self.output_fmt = output_fmt
        self.default_cfg = getattr(model, "default_cfg", None)

    def construct(self, x):
        return self.model.forward_intermediates(x, indices=self.out_indices, norm=self.norm,
                                                output_fmt=self.output_fmt, intermediates_only=True)


class TokenMaps(nn.Cell):
    """The intermediates of a ViT-like model (class token first, then a row-major grid of patch tokens) in timm's
    output form: prefix tokens split off, the patch tokens as ``(B, C, H, W)`` maps for ``"NCHW"`` or left
    ``(B, H * W, C)`` for ``"NLC"``, each paired with its prefix tokens when ``return_prefix_tokens``."""

    def __init__(self, num_prefix_tokens):
        super().__init__()
        self.num_prefix_tokens = num_prefix_tokens
        self.to_map = TokensToMap()

    def construct(self, intermediates, grid, output_fmt="NCHW", return_prefix_tokens=False):
        out = []
        for y in intermediates:
            tokens = y[:, self.num_prefix_tokens:]
            if output_fmt == "NCHW":
                tokens = self.to_map(tokens, grid)
            out.append((tokens, y[:, :self.num_prefix_tokens]) if return_prefix_tokens else tokens)
        return out
