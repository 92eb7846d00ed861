"""How MindSpore launches CPU kernels: synchronously, from the calling thread (set by the entry points).

MindSpore 2.7-2.10 hands each PyNative operator to a pipeline of dispatch threads by default. On a CPU device the
kernels run on the same cores, so those threads only compete with the work they pass on. On 2 Zen 4 cores
(docs/benchmarks.md, "Synchronous kernel launch on CPU"), synchronous launch makes a full-size Twins-SVT-S
PyNative training step 3.8x faster (14.3 -> 3.7 s, batch 8) and a tiny model's forward 15x faster; graph mode,
which launches a compiled graph, trains at the same speed either way. GPU and Ascend keep the asynchronous
pipeline, which overlaps the host with the device.
"""


def launch_synchronously_on_cpu():
    """Launch MindSpore's kernels from the calling thread (``mindspore.runtime.launch_blocking``). For CPU
    devices only; call it when choosing the device, before the first operator runs. Returns True."""
    import mindspore as ms
    from mindspore._c_expression import RuntimeConf

    if not RuntimeConf.get_instance().is_launch_blocking():
        ms.runtime.launch_blocking()
    return True


def launches_synchronously():
    """True when MindSpore launches kernels synchronously in this process."""
    from mindspore._c_expression import RuntimeConf

    return RuntimeConf.get_instance().is_launch_blocking()
