"""Helpers for parity tests against timm (PyTorch): same weights in, same logits out."""
import os

import numpy as np


def torch_and_timm():
    """Import torch and timm (dev requirements: a missing one is an error, not a skip)."""
    import timm
    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    return torch, timm


def count_params(model):
    """Number of parameters of a MindSpore cell (trainable or not), as timm counts them."""
    return sum(int(np.prod(p.shape)) for p in model.get_parameters())


def fixed_batch(batch=2, size=224, seed=0):
    return np.random.RandomState(seed).randn(batch, 3, size, size).astype(np.float32)


def timm_vs_ours(arch, tmp_path, timm_name=None, size=224, batch=2, seed=0, timm_kwargs=None, **our_kwargs):
    """Build timm's model from a seed, save it as .pth, read and convert it with convert_from_pt's code
    path (the converted model is used directly; building it twice only costs init time), run both in eval
    mode on the same batch; return ``(timm_logits, our_logits, timm_model, our_model)``.
    """
    import mindspore as ms

    from mszoo.models.convert import convert_state_dict, read_torch_checkpoint

    torch, timm = torch_and_timm()
    torch.manual_seed(seed)
    ref = timm.create_model(timm_name or arch, pretrained=False, **(timm_kwargs or {})).eval()
    pth = os.path.join(str(tmp_path), f"{arch}.pth")
    torch.save(ref.state_dict(), pth)
    ours, _ = convert_state_dict(arch, read_torch_checkpoint(pth), num_classes=ref.num_classes, **our_kwargs)
    ours.set_train(False)
    x = fixed_batch(batch, size, seed)
    with torch.no_grad():
        ref_out = ref(torch.from_numpy(x)).numpy()
    our_out = ours(ms.Tensor(x)).asnumpy()
    return ref_out, our_out, ref, ours


def torch_state_dict_numpy(model):
    """A PyTorch module's state dict as numpy arrays."""
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


# Parameter counts at 1000 classes of the models timm has, as timm 1.0.31 reports them (sum of numel over
# parameters()); T2T-ViT's are checked against the official code in tests/models/test_t2t_vit.py.
TIMM_PARAM_COUNTS = {
    "twins_pcpvt_small": 24_106_216,
    "twins_pcpvt_base": 43_828_456,
    "twins_pcpvt_large": 60_989_672,
    "twins_svt_small": 24_060_776,
    "twins_svt_base": 56_070_952,
    "twins_svt_large": 99_271_400,
    "tnt_s_legacy_patch16_224": 23_755_336,
    "tnt_s_patch16_224": 23_768_584,
    "tnt_b_patch16_224": 65_428_680,
}
