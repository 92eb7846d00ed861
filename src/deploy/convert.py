"""Convert timm / official PyTorch checkpoints to MindSpore ``.ckpt`` files.

Reading is safe by construction: ``.safetensors`` through the ``safetensors`` package (no PyTorch
needed), ``.pth/.pt/.bin`` through ``torch.load(weights_only=True)`` only. Key and shape mapping is
one pure ``checkpoint_filter_fn(state_dict, model) -> state_dict`` per model family (in the family's
model file); this module checks that every model parameter is filled with the right shape.
"""
import os

import numpy as np
import mindspore as ms

from src.models import create_model, model_family_module, resolve_name
from src.models.loading import HEAD_PREFIXES

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
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ConversionError("reading .safetensors needs the 'safetensors' package "
                              "(pip install -r requirements.txt)") from None
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


def _short(names, limit=12):
    names = sorted(names)
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def match_to_model(mapped, model, drop_head=False):
    """Check a mapped state dict against the model: every parameter present with its shape.

    With ``drop_head`` a classifier whose shape differs is left at the model's fresh init.
    Returns ``(weights, dropped_head_keys)``; raises ``ConversionError`` naming the bad keys.
    """
    own = {p.name: p for p in model.get_parameters()}
    unexpected = [k for k in mapped if k not in own]
    missing = [k for k in own if k not in mapped]
    mismatched, dropped = [], []
    weights = {}
    for key, value in mapped.items():
        if key not in own:
            continue
        if tuple(value.shape) != tuple(own[key].shape):
            if drop_head and key.startswith(HEAD_PREFIXES):
                dropped.append(key)
                continue
            mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)}")
            continue
        weights[key] = value
    problems = []
    if unexpected:
        problems.append(f"unmapped checkpoint keys: {_short(unexpected)}")
    if missing:
        problems.append(f"model parameters not in checkpoint: {_short(missing)}")
    if mismatched:
        problems.append(f"shape mismatch: {_short(mismatched)}")
    if problems:
        raise ConversionError("; ".join(problems))
    return weights, dropped


def convert_state_dict(arch, state_dict, num_classes=None, img_size=None, **model_kwargs):
    """Map a PyTorch state dict onto a freshly built ``arch`` model; return ``(model, dropped)``.

    ``num_classes`` (default: the checkpoint's) re-heads for fine-tuning; ``img_size`` builds the model
    at another resolution and the family's filter resamples position embeddings to it.
    """
    arch = resolve_name(arch)
    family = model_family_module(arch)
    if num_classes is None:
        num_classes = _infer_num_classes(state_dict)
    kwargs = dict(model_kwargs)
    if img_size is not None:
        kwargs["img_size"] = img_size
    model = create_model(arch, num_classes=num_classes, **kwargs)
    mapped = family.checkpoint_filter_fn(dict(state_dict), model)
    weights, dropped = match_to_model(mapped, model, drop_head=True)
    params = {k: ms.Parameter(ms.Tensor(np.ascontiguousarray(v, dtype=np.float32)), name=k)
              for k, v in weights.items()}
    not_loaded, _ = ms.load_param_into_net(model, params)
    not_loaded = [k for k in not_loaded if k not in dropped]
    if not_loaded:
        raise ConversionError(f"parameters not loaded: {_short(not_loaded)}")
    return model, dropped


def _infer_num_classes(state_dict):
    for key in ("head.weight", "head.fc.weight", "fc.weight"):
        if key in state_dict and state_dict[key].ndim == 2:
            return int(state_dict[key].shape[0])
    return 1000


def convert_file(arch, input_path, output_path, num_classes=None, img_size=None, prefer_ema=False, **model_kwargs):
    """Read ``input_path``, map it to ``arch`` and save a MindSpore checkpoint at ``output_path``.

    ``model_kwargs`` are ``create_model`` overrides for checkpoints of non-standard widths."""
    state_dict = read_torch_checkpoint(input_path, prefer_ema=prefer_ema)
    model, dropped = convert_state_dict(arch, state_dict, num_classes=num_classes, img_size=img_size,
                                        **model_kwargs)
    out_dir = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(out_dir, exist_ok=True)
    if not output_path.endswith(".ckpt"):
        output_path += ".ckpt"  # MindSpore appends .ckpt to any other name
    tmp = output_path[:-len(".ckpt")] + ".tmp.ckpt"
    ms.save_checkpoint(model, tmp)
    os.replace(tmp, output_path)
    n_params = sum(int(np.prod(p.shape)) for p in model.get_parameters())
    return dict(arch=resolve_name(arch), output=output_path, num_params=n_params, dropped_head=dropped,
                num_tensors=len(state_dict))
