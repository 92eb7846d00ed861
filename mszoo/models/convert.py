"""Convert timm / official PyTorch checkpoints to MindSpore ``.ckpt`` files.

Reading is safe by construction: ``.safetensors`` through the ``safetensors`` package (no PyTorch
needed), ``.pth/.pt/.bin`` through ``torch.load(weights_only=True)`` only. Key and shape mapping is
one pure ``checkpoint_filter_fn(state_dict, model) -> state_dict`` per model family, registered with its
variants (``register_model(checkpoint_filter=...)``); the model is built and loaded by the same merge and load
as ``create_model(pretrained=...)`` (mszoo/models/pretrained.py). The written
``.ckpt`` carries a model record (arch, classes, input size, the variant's eval preprocessing), so
eval/infer/export need nothing but the file.
"""
import argparse
import os

import mindspore as ms
import numpy as np

from mszoo.extras import require
from mszoo.fileio import written_as

from .loading import head_classes
from .pretrained import load_into, merge_args
from .record import RECORD_KEY, make_record, record_to_text
from .registry import create_model, resolve_data_config, resolve_name

NESTED_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model", "module", "net")


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message names the file and the keys."""


def _to_numpy(value):
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):  # torch.Tensor
        t = value.detach().cpu()
        if str(t.dtype) in ("torch.bfloat16", "torch.float16"):
            t = t.float()
        return t.numpy()
    return np.asarray(value)


def _read_safetensors(path):
    load_file = require("safetensors.numpy", "reading .safetensors").load_file
    try:
        return load_file(path)
    except Exception as exc:
        raise ConversionError(f"cannot read {path} as safetensors: {exc}") from None


def _read_torch(path, prefer_ema=False):
    try:
        import torch
    except ImportError:
        raise ConversionError(f"reading {os.path.basename(path)} needs PyTorch (pip install torch); "
                              "a .safetensors file converts without it") from None
    try:
        # Training checkpoints saved by timm's CheckpointSaver (the official T2T-ViT releases) also hold the
        # argparse Namespace of the run: plain data, allowed; anything else that is not a tensor is refused.
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"refusing {path}: it cannot be read with torch.load(weights_only=True) "
                              f"({first}); only plain tensor checkpoints are accepted") from None
    return unwrap_state_dict(obj, prefer_ema=prefer_ema)


def unwrap_state_dict(obj, prefer_ema=False):
    """Find the tensor dict in a training checkpoint (``state_dict``/``model``/``state_dict_ema``)."""
    plain = tuple(k for k in NESTED_KEYS if "ema" not in k)
    order = NESTED_KEYS if prefer_ema else plain + ("state_dict_ema", "model_ema")
    for _ in range(3):
        if not isinstance(obj, dict):
            break
        if obj and all(hasattr(v, "shape") for v in obj.values()):
            break
        for key in order:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        else:
            break
    if not isinstance(obj, dict) or not obj:
        raise ConversionError("no state dict (name -> tensor) found in the checkpoint")
    return {k: v for k, v in obj.items() if hasattr(v, "shape")}


def strip_prefixes(state_dict):
    """Drop ``module.`` (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) prefixes."""
    out = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def read_torch_checkpoint(path, prefer_ema=False):
    """Read a PyTorch-side checkpoint into ``{name: np.ndarray}``."""
    if not os.path.isfile(path):
        raise ConversionError(f"input checkpoint not found: {path}")
    if path.endswith(".safetensors"):
        sd = _read_safetensors(path)
    elif path.endswith((".pth", ".pt", ".bin", ".pth.tar", ".tar")):
        sd = _read_torch(path, prefer_ema=prefer_ema)
    else:
        raise ConversionError(f"unsupported checkpoint type: {path} (use .pth, .pt, .bin or .safetensors)")
    return {k: _to_numpy(v) for k, v in strip_prefixes(sd).items()}


def convert_state_dict(arch, state_dict, num_classes=None, img_size=None, source="checkpoint", **model_kwargs):
    """Build ``arch`` for a PyTorch state dict and load it; return ``(model, replaced)``.

    The same merge and load as ``create_model(pretrained=...)`` (mszoo/models/pretrained.py): the classifier's
    size gives ``num_classes`` unless ``num_classes`` re-heads for fine-tuning (a classifier of another size is
    left at its fresh init and its names are returned); the variant's registered checkpoint filter maps the
    names and shapes (``img_size`` builds the model at another resolution and the filter resamples position
    embeddings to it); every parameter present with its shape and every mapped key a parameter, or
    ``CheckpointError`` naming them.
    """
    arch = resolve_name(arch)
    fine_tune = num_classes is not None
    given = dict(model_kwargs, num_classes=num_classes, img_size=img_size)
    args = merge_args(given, source, lambda key: "given to the converter", head_classes=head_classes(state_dict),
                      fine_tune=fine_tune)
    model = create_model(arch, **args)
    replaced, _ = load_into(model, arch, state_dict, source=source, fine_tune=fine_tune)
    return model, replaced


def convert_file(arch, input_path, output_path, num_classes=None, img_size=None, prefer_ema=False, **model_kwargs):
    """Read ``input_path``, map it to ``arch`` and save a MindSpore checkpoint at ``output_path``.

    ``model_kwargs`` are ``create_model`` overrides for checkpoints of non-standard widths."""
    state_dict = read_torch_checkpoint(input_path, prefer_ema=prefer_ema)
    model, replaced = convert_state_dict(arch, state_dict, num_classes=num_classes, img_size=img_size,
                                         source=input_path, **model_kwargs)
    arch = resolve_name(arch)
    pre = resolve_data_config(arch, {"image_size": img_size})
    record = make_record(arch, model.num_classes, pre["image_size"], pre["crop_pct"], pre["interpolation"],
                         pre["mean"], pre["std"], model_kwargs=model_kwargs)
    out_dir = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(out_dir, exist_ok=True)
    if not output_path.endswith(".ckpt"):
        output_path += ".ckpt"  # MindSpore appends .ckpt to any other name
    # A re-headed model is saved without its head: a random classifier must never be run as a trained one
    # (eval/infer/export refuse the file; train.py --pretrained gives it a new head).
    weights = [{"name": p.name, "data": p} for p in model.get_parameters() if p.name not in replaced]
    with written_as(output_path) as tmp:
        ms.save_checkpoint(weights, tmp, append_dict={RECORD_KEY: record_to_text(record)})
    n_params = sum(int(np.prod(p.shape)) for p in model.get_parameters())
    return dict(arch=arch, output=output_path, num_params=n_params, dropped_head=replaced,
                num_tensors=len(state_dict), record=record)
