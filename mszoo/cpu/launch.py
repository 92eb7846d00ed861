"""MindSpore on a CPU device as mszoo runs it: the oneDNN cap where it pays, and kernels launched synchronously.

MindSpore 2.7-2.10 hands each PyNative operator to a pipeline of dispatch threads by default. On a CPU device the
kernels run on the same cores, so those threads only compete with the work they pass on. On 2 Zen 4 cores
(docs/benchmarks.md, "Other training-speed choices"), synchronous launch makes a full-size Twins-SVT-S PyNative
training step 3.8x faster (14.3 -> 3.7 s, batch 8) and a tiny model's forward 15x faster; graph mode, which
launches a compiled graph, trains at the same speed either way. GPU and Ascend keep the asynchronous pipeline,
which overlaps the host with the device.
"""
from mszoo.cpu.onednn import configure_cpu_kernels


def set_cpu_device(cap_onednn=True, fused_kernels=False):
    """``mindspore.set_device("CPU")`` as the entry points do it: first the oneDNN cap where it pays
    (:func:`mszoo.cpu.onednn.configure_cpu_kernels`; ``cap_onednn=False`` for processes whose compute is not
    MindSpore's; ``fused_kernels`` for processes whose models run the fused kernels), then synchronous kernel launch
    (``mindspore.runtime.launch_blocking``). Call it once, before the first operator runs."""
    import mindspore as ms

    if cap_onednn:
        configure_cpu_kernels(fused_kernels=fused_kernels)
    ms.set_device("CPU")
    if not launches_synchronously():
        ms.runtime.launch_blocking()


def launches_synchronously():
    """True when MindSpore launches kernels synchronously in this process."""
    from mindspore._c_expression import RuntimeConf

    return RuntimeConf.get_instance().is_launch_blocking()
