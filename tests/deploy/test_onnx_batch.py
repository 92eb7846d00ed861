"""merge_dynamic_batch: the batch-dependent constants it can rewrite become dynamic (checked with onnxruntime
at a third batch size); every graph it cannot rewrite is refused with DynamicBatchError, never returned
silently wrong. Graphs are built by hand at two batch sizes, as export.py exports a model twice."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mszoo.deploy.onnx_batch import DynamicBatchError, merge_dynamic_batch

TOKENS, DIM = 4, 3


def _model(batch, nodes, constants, out_shape):
    """x: (batch, TOKENS, DIM) float32 -> y: out_shape; ``constants`` as initializers, in order."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, TOKENS, DIM])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(np.asarray(v), name) for name, v in constants])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _tokens_as_rows(batch):
    """Dense-layer pattern: (B, N, C) -> (B*N, C) -> + bias -> (B, N, C)."""
    nodes = [helper.make_node("Reshape", ["x", "rows_shape"], ["rows"]),
             helper.make_node("Add", ["rows", "bias"], ["rows_b"]),
             helper.make_node("Reshape", ["rows_b", "back_shape"], ["y"])]
    constants = [("rows_shape", np.array([batch * TOKENS, DIM], np.int64)),
                 ("bias", np.arange(DIM, dtype=np.float32)),
                 ("back_shape", np.array([batch, TOKENS, DIM], np.int64))]
    return _model(batch, nodes, constants, [batch, TOKENS, DIM])


def _run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_batch_dependent_reshape_targets_become_dynamic():
    merged = merge_dynamic_batch(_tokens_as_rows(2), _tokens_as_rows(3), 2, 3)
    consts = {i.name: numpy_helper.to_array(i).tolist() for i in merged.graph.initializer}
    assert consts["rows_shape"] == [-1, DIM] and consts["back_shape"] == [-1, TOKENS, DIM]
    assert merged.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    x = np.random.RandomState(0).randn(5, TOKENS, DIM).astype(np.float32)  # neither export's batch
    np.testing.assert_allclose(_run(merged, x), x + np.arange(DIM, dtype=np.float32), rtol=0, atol=1e-6)


def _batch_offset_add(batch):
    """An Add whose constant holds a value computed from the batch size (not a shape): cannot be rewritten."""
    nodes = [helper.make_node("Add", ["x", "offset"], ["y"])]
    return _model(batch, nodes, [("offset", np.full((1, 1, DIM), float(batch), np.float32))], [batch, TOKENS, DIM])


def _per_sample_constant(batch):
    """A constant with one different row per sample (shape (B, N, C), not uniform)."""
    table = np.arange(batch * TOKENS * DIM, dtype=np.float32).reshape(batch, TOKENS, DIM)
    nodes = [helper.make_node("Add", ["x", "table"], ["y"])]
    return _model(batch, nodes, [("table", table)], [batch, TOKENS, DIM])


def _two_batch_entries(batch):
    """(B, N, C) -> a 2-D target whose both entries change with the batch: no single -1 can express it."""
    total = batch * TOKENS * DIM
    shape = {2: [2, 12], 3: [4, 9]}[batch]
    assert shape[0] * shape[1] == total
    nodes = [helper.make_node("Reshape", ["x", "target"], ["y"])]
    return _model(batch, nodes, [("target", np.array(shape, np.int64))], shape)


def _tile_by_batch_squared(batch):
    """Tile repeats that are not the batch size itself (B*B rows)."""
    nodes = [helper.make_node("Tile", ["x", "repeats"], ["y"])]
    return _model(batch, nodes, [("repeats", np.array([batch, 1, 1], np.int64) * [batch, 1, 1])],
                  [batch * batch * batch, TOKENS, DIM])


def _extra_op(batch):
    model = _tokens_as_rows(batch)
    if batch == 3:  # the second export has one more node
        model.graph.node.append(helper.make_node("Identity", ["y"], ["unused"]))
    return model


@pytest.mark.parametrize("build, message", [
    (_batch_offset_add, "constant offset depends on the batch size and is not a Reshape target"),
    (_per_sample_constant, "constant table changes shape with the batch size"),
    (_two_batch_entries, "Reshape target target has 2 batch-dependent entries"),
    (_tile_by_batch_squared, r"repeats: batch-dependent \['Tile'\] vector"),
    (_extra_op, "the two exports differ in structure"),
], ids=["value-from-batch", "per-sample-table", "two-entries", "tile-not-batch", "structure"])
def test_a_graph_that_cannot_be_made_dynamic_is_refused(build, message):
    with pytest.raises(DynamicBatchError, match=message):
        merge_dynamic_batch(build(2), build(3), 2, 3)
