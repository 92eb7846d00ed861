"""Checkpoints written by the model-zoo readmes' own MindSpore code (the model-zoo projects our users come from).

Their parameters have other names (``nn.LayerNorm``'s ``gamma``/``beta``, separate ``q``/``k`` layers, ...) and
in places their models are other models (the TNT code's output layers have no bias): such a checkpoint loads
into the variant that is that code's architecture (``tnt_s_patch16_224_mindspore_seed``), never into the
published one. A family registers a ``SeedFormat`` for each model-zoo code; ``recognise_seed`` tells a checkpoint of
that code by its parameter names and maps them to the variant's (``CheckpointFile`` does this on reading).

Imports nothing from the rest of ``mszoo.models``: ``loading`` uses it, and the family files register in it.
"""
from collections.abc import Mapping
from typing import Callable, NamedTuple, Optional

import numpy as np

# What the model-zoo code's training network holds besides the model: MindSpore's AdamWeightDecay/Adam/Momentum moments
# and step, the learning rate, the loss-scale cell's state and ModelCheckpoint's counters.
SEED_TRAINING_STATE_PREFIXES = ("adam_m.", "adam_v.", "moments.", "accum.", "moment1.", "moment2.")
SEED_TRAINING_STATE = frozenset({"global_step", "learning_rate", "scale_sense", "current_iterator_step",
                                 "last_overflow_iterator_step", "beta1_power", "beta2_power", "epoch_num",
                                 "step_num"})
# The model-zoo code's training wrappers put these in front of the model's names (their NetWithLoss holds ``model``).
SEED_WRAPPER_PREFIXES = ("model.", "network.", "_backbone.")


class SeedFormat(NamedTuple):
    """One model-zoo code's checkpoints: ``markers`` (parameter names only it has), ``variants`` (the readme's model
    name -> our variant of its architecture), ``convert`` (its names/shapes -> the variant's) and ``source``
    (where the code lives, for messages)."""
    source: str
    markers: frozenset
    variants: dict[str, str]
    convert: Callable[[Mapping], dict]

    def variant_for(self, arch: Optional[str]) -> Optional[str]:
        """Our variant for the readme's model name ``arch`` (or one of ours); the only one when ``arch`` is None."""
        if arch is None:
            return next(iter(self.variants.values()))
        if arch in self.variants.values():
            return arch
        return self.variants.get(arch)


_FORMATS = []


def norm_names(key):
    """``nn.LayerNorm``'s ``gamma``/``beta`` -> ``weight``/``bias`` (our LayerNorm's, timm's)."""
    head, _, leaf = key.rpartition(".")
    leaf = {"gamma": "weight", "beta": "bias"}.get(leaf, leaf)
    return f"{head}.{leaf}" if head else leaf


def join_layers(weights, parts, joined):
    """Separate projections (``parts``, e.g. ``("q", "k")``) -> one layer ``joined`` whose outputs are theirs in
    that order (how ``SplitHeads`` reads a joint projection); ``weights`` is changed and returned."""
    first = f".{parts[0]}."
    for key in [k for k in weights if first in k]:
        stem, _, leaf = key.rpartition(first)
        names = [f"{stem}.{part}.{leaf}" for part in parts]
        if all(name in weights for name in names):
            weights[f"{stem}.{joined}.{leaf}"] = np.concatenate([weights.pop(name) for name in names], axis=0)
    return weights


def register_seed_format(fmt: SeedFormat) -> SeedFormat:
    _FORMATS.append(fmt)
    return fmt


def _model_entries(tensors, markers):
    """``(prefix, entries)``: the model-zoo model's entries with the wrapper prefix that makes ``markers`` appear."""
    names = set(tensors)
    for prefix in ("",) + SEED_WRAPPER_PREFIXES:
        if {prefix + m for m in markers} <= names:
            return prefix, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    return None, None


def recognise_seed(tensors: Mapping) -> Optional[tuple[SeedFormat, dict]]:
    """``(format, weights)`` when ``tensors`` (name -> array) is a model-zoo code's checkpoint, else None.

    ``weights`` are the model's entries mapped to our variant's names; the code's training state is dropped and
    every other entry is kept as it is, so the one loading rule names it as unexpected."""
    state = {k: v for k, v in tensors.items()
             if k not in SEED_TRAINING_STATE and not k.startswith(SEED_TRAINING_STATE_PREFIXES)}
    for fmt in _FORMATS:
        prefix, model = _model_entries(state, fmt.markers)
        if model is None:
            continue
        others = {k: v for k, v in state.items() if not k.startswith(prefix)}
        return fmt, dict(fmt.convert(model), **others)
    return None
