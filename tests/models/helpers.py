"""Helpers shared by the layer tests: gradients through MindSpore's autodiff and the process's RSS."""
import mindspore as ms
import pytest
from mindspore import nn, ops


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024.0
    pytest.skip("no /proc/self/status")


class Vjp(nn.Cell):
    """(x, dy) -> (net(x), (d/dx,), d/dparams) through MindSpore's autodiff."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.weights = ms.ParameterTuple(net.trainable_params())
        self.grad = ops.GradOperation(get_all=True, get_by_list=True, sens_param=True)

    def construct(self, x, dy):
        return self.net(x), self.grad(self.net, self.weights)(x, dy)
