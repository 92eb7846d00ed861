"""ONNX graph rewrites: the exported erf approximation becomes one exact Erf node, nothing else changes."""
import mindspore as ms
import numpy as np
import pytest

from mszoo.deploy.onnx_graph import remove_dead_nodes, restore_erf
from mszoo.models.layers import GELU


def _export_gelu(tmp_path):
    import onnx

    gelu = GELU()
    gelu.exportable = True
    ms.export(gelu, ms.Tensor(np.zeros((4, 256), np.float32)), file_name=str(tmp_path / "gelu"), file_format="ONNX")
    return onnx.load(str(tmp_path / "gelu.onnx"))


def _run(model, x):
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_exported_gelu_becomes_exact_erf_gelu(tmp_path):
    import onnx

    model = _export_gelu(tmp_path)
    before = [node.op_type for node in model.graph.node]
    assert "Where" in before and "Erf" not in before
    assert restore_erf(model) == 1
    onnx.checker.check_model(model)
    after = [node.op_type for node in model.graph.node]
    assert after.count("Erf") == 1
    assert not {"Where", "Abs", "Exp", "Neg", "Less", "Not"} & set(after)
    x = np.linspace(-6, 6, 4 * 256, dtype=np.float32).reshape(4, 256)
    exact = GELU()(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(_run(model, x), exact, atol=1e-6, rtol=0)


def _where_graph(with_exp):
    """Where(a >= 0, y, -y) whose y is not erf's structure unless ``with_exp``."""
    from onnx import TensorProto, helper, numpy_helper

    zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
    one = numpy_helper.from_array(np.ones((), np.float32), "one")
    unused = numpy_helper.from_array(np.ones((3,), np.float32), "unused")
    nodes = [
        helper.make_node("Less", ["a", "zero"], ["lt"]),
        helper.make_node("Not", ["lt"], ["ge"]),
        helper.make_node("Abs", ["a"], ["abs"]),
        helper.make_node("Neg", ["abs"], ["nabs"]),
        helper.make_node("Mul", ["nabs", "abs"], ["sq"]),
        helper.make_node("Exp" if with_exp else "Sqrt", ["sq"], ["e"]),
        helper.make_node("Mul", ["one", "e"], ["t"]),
        helper.make_node("Sub", ["one", "t"], ["y"]),
        helper.make_node("Neg", ["y"], ["ny"]),
        helper.make_node("Where", ["ge", "y", "ny"], ["out"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [5])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [5])], [zero, one, unused])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7)


def test_where_that_is_not_erf_is_left_alone():
    model = _where_graph(with_exp=False)
    before = [node.op_type for node in model.graph.node]
    assert restore_erf(model) == 0
    assert [node.op_type for node in model.graph.node] == before


def test_matched_erf_drops_its_dead_nodes_and_constants():
    model = _where_graph(with_exp=True)
    assert restore_erf(model) == 1
    assert [node.op_type for node in model.graph.node] == ["Erf"]
    assert {init.name for init in model.graph.initializer} == set()


def test_remove_dead_nodes_keeps_what_outputs_need():
    model = _where_graph(with_exp=True)
    assert remove_dead_nodes(model.graph) == 0
    assert {init.name for init in model.graph.initializer} == {"zero", "one"}


@pytest.mark.parametrize("value", [-3.0, -0.5, 0.0, 0.7, 2.5])
def test_restored_erf_equals_math_erf(value):
    import math

    model = _where_graph(with_exp=True)
    restore_erf(model)
    x = np.full(5, value, np.float32)
    np.testing.assert_allclose(_run(model, x), math.erf(value), atol=1e-6)
