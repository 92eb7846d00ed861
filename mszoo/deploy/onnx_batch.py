"""Make a static-batch ONNX export dynamic in the batch axis.

MindSpore 2.10 exports ONNX only with static shapes ("not support dynamic shape mode"). Reshape targets
are baked in as constants, some of which contain the batch size (``B*N`` rows for a Dense layer,
``B*windows`` for Twins' local attention). We export the same model at two batch sizes, compare the
two graphs constant by constant, and rewrite every constant that differs: a Reshape target gets ``-1``
in its batch-dependent position (exactly one per target, else we refuse). Any other constant that
depends on the batch is an error rather than a silently wrong model. Inputs and outputs get a symbolic
``batch`` dimension.
"""
import numpy as np


class DynamicBatchError(RuntimeError):
    """The exported graph has a batch-dependent constant that cannot be made dynamic."""


def _constant_values(graph):
    """name of each Constant node output / initializer -> numpy array."""
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _reshape_targets(graph):
    return {node.input[1] for node in graph.node if node.op_type == "Reshape" and len(node.input) > 1}


def _set_constant(graph, name, array):
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            init.CopyFrom(numpy_helper.from_array(array, name))
            return
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    attr.t.CopyFrom(numpy_helper.from_array(array, attr.t.name))
                    return
    raise KeyError(name)


BROADCAST_OPS = {"Add", "Sub", "Mul", "Div", "Pow", "Where", "Equal", "Less", "LessOrEqual", "Greater",
                 "GreaterOrEqual", "Max", "Min", "And", "Or"}


def _consumers(graph):
    users = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, set()).add(node.op_type)
    return users


def _static_shapes(model):
    """Static shape of every tensor in a static-shape model (ONNX shape inference)."""
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [d.dim_value for d in dims]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _resolve_minus_one(target, data_shape):
    """A Reshape target with its -1 replaced by the concrete size (needs the data's static shape)."""
    target = target.copy()
    if -1 in target.tolist():
        if data_shape is None:
            return None
        known = int(np.prod([d for d in target if d != -1])) if len(target) > 1 else 1
        target[target.tolist().index(-1)] = int(np.prod(data_shape)) // known
    return target


SHAPE_INPUT_OPS = {"Tile", "Expand"}  # ops whose second input is a shape/repeat vector


def _dynamic_batch_vector(graph, name, values, index):
    """Replace constant ``name`` by ``Concat(values[:index], batch, values[index+1:])`` computed at run time,
    where ``batch`` is dimension 0 of the graph's first input."""
    from onnx import helper, numpy_helper

    prefix = f"dynbatch_{name}"
    x = graph.input[0].name
    nodes = [  # Shape -> Gather([0]) works in every opset the exporter emits (Shape's start/end needs 15)
        helper.make_node("Shape", [x], [f"{prefix}_shape"]),
        helper.make_node("Gather", [f"{prefix}_shape", f"{prefix}_zero"], [f"{prefix}_batch"], axis=0),
        helper.make_node("Concat", [f"{prefix}_head", f"{prefix}_batch", f"{prefix}_tail"], [f"{prefix}_vec"],
                         axis=0),
    ]
    graph.initializer.extend([numpy_helper.from_array(np.array([0], np.int64), f"{prefix}_zero"),
                              numpy_helper.from_array(values[:index].astype(np.int64), f"{prefix}_head"),
                              numpy_helper.from_array(values[index + 1:].astype(np.int64), f"{prefix}_tail")])
    for node in graph.node:
        for i, inp in enumerate(node.input):
            if inp == name:
                node.input[i] = f"{prefix}_vec"
    for offset, node in enumerate(nodes):
        graph.node.insert(offset, node)


def merge_dynamic_batch(model_a, model_b, batch_a, batch_b):
    """Return ``model_a`` rewritten so its batch axis is symbolic, using ``model_b`` (other batch) as a diff."""
    ga, gb = model_a.graph, model_b.graph
    shapes_a, shapes_b = _static_shapes(model_a), _static_shapes(model_b)
    data_of, data_of_b = _reshape_data_inputs(ga), _reshape_data_inputs(gb)
    va, vb, pairs = _paired_constants(ga, gb)
    reshape_targets = _reshape_targets(ga)
    users = _consumers(ga)
    for name_a, name_b in pairs:
        a, b = va[name_a], vb[name_b]
        if a.shape != b.shape:
            _merge_broadcast_constant(ga, name_a, a, b, users)
        elif np.array_equal(a, b):
            continue
        elif a.ndim == 1 and users.get(name_a, set()) <= SHAPE_INPUT_OPS:
            _merge_shape_vector(ga, name_a, a, b, users, batch_a, batch_b)
        else:
            if name_a not in reshape_targets or a.ndim != 1:
                raise DynamicBatchError(f"constant {name_a} depends on the batch size and is not a Reshape target")
            a = _resolve_minus_one(a, shapes_a.get(data_of.get(name_a)))
            b = _resolve_minus_one(b, shapes_b.get(data_of_b.get(name_b)))
            _merge_reshape_target(ga, name_a, a, b, batch_a, batch_b)
    _symbolic_batch_io(ga, batch_a)
    # Intermediate shape annotations hold the static batch; drop them so runtimes infer shapes.
    del ga.value_info[:]
    return model_a


def _reshape_data_inputs(graph):
    """``{shape input: data input}`` of the graph's Reshape nodes."""
    return {node.input[1]: node.input[0] for node in graph.node if node.op_type == "Reshape" and len(node.input) > 1}


def _paired_constants(ga, gb):
    """The constants of both exports and their names paired by order of appearance (names are positional in
    MindSpore's exporter); the two graphs must have the same nodes and the same number of constants."""
    if [n.op_type for n in ga.node] != [n.op_type for n in gb.node]:
        raise DynamicBatchError("the two exports differ in structure; cannot derive a dynamic batch")
    va, vb = _constant_values(ga), _constant_values(gb)
    names_a, names_b = list(va), list(vb)
    if len(names_a) != len(names_b):
        raise DynamicBatchError("the two exports have a different number of constants")
    return va, vb, list(zip(names_a, names_b))


def _merge_broadcast_constant(ga, name_a, a, b, users):
    """A constant whose shape follows the batch: a filled constant (e.g. the 1.0 of "1 / x", folded to x's
    shape) feeding only broadcasting ops becomes the same value as a broadcast scalar; anything else is an error."""
    uniform = a.size and b.size and (a == a.flat[0]).all() and (b == a.flat[0]).all()
    if uniform and users.get(name_a, set()) <= BROADCAST_OPS and a.ndim == b.ndim:
        _set_constant(ga, name_a, np.full([1] * a.ndim, a.flat[0], dtype=a.dtype))
        return
    raise DynamicBatchError(f"constant {name_a} changes shape with the batch size")


def _merge_shape_vector(ga, name_a, a, b, users, batch_a, batch_b):
    """Tile repeats / Expand shape: the entry that equals the batch size becomes the input's batch."""
    differs = np.nonzero(a != b)[0]
    if len(differs) != 1 or a[differs[0]] != batch_a or b[differs[0]] != batch_b:
        raise DynamicBatchError(f"{name_a}: batch-dependent {sorted(users[name_a])} vector {a.tolist()}")
    _dynamic_batch_vector(ga, name_a, a, int(differs[0]))


def _merge_reshape_target(ga, name_a, a, b, batch_a, batch_b):
    """A Reshape target (its -1 resolved, None when it could not be) with one entry proportional to the batch
    size: that entry becomes -1."""
    if a is None or b is None:
        raise DynamicBatchError(f"Reshape target {name_a} has a -1 and an input of unknown shape")
    differs = np.nonzero(a != b)[0]
    if len(differs) != 1:
        raise DynamicBatchError(f"Reshape target {name_a} has {len(differs)} batch-dependent entries")
    idx = int(differs[0])
    if a[idx] * batch_b != b[idx] * batch_a:
        raise DynamicBatchError(f"Reshape target {name_a} is not proportional to the batch size")
    fixed = a.copy()
    fixed[idx] = -1
    _set_constant(ga, name_a, fixed)


def _symbolic_batch_io(ga, batch_a):
    """The graph's inputs and outputs whose first dimension is ``batch_a`` get the symbolic dimension ``batch``."""
    for value_info in list(ga.input) + list(ga.output):
        dims = value_info.type.tensor_type.shape.dim
        if dims and dims[0].dim_value == batch_a:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
