"""Rewrites of MindSpore's ONNX exports that make them run fast in ONNX runtimes.

MindSpore 2.10 cannot export ``Erf``, so an exported GELU computes erf from elementary ops
(``erf_exportable``: Abs, Div, a degree-5 polynomial, Exp, Sub, Neg and Where, about 20 nodes over the
largest activation of every block). In onnxruntime those elementwise passes took ~60 % of a Twins
forward pass. ONNX has had ``Erf`` since opset 9, so ``restore_erf`` finds each such subgraph by its
structure and replaces it with one ``Erf`` node (which onnxruntime then fuses into its ``Gelu`` kernel).
The result is exact erf instead of an approximation within 1.5e-7. A subgraph that does not match
stays as it is: the model is then slower, never wrong.

LayerNorm is exported as ``(x - mean) / sqrt(ReduceSumSquare(x - mean) / n + eps)``. Neither OpenVINO
(MVN) nor onnxruntime (LayerNormalization) recognises the ``ReduceSumSquare / n`` variance, so
``variance_as_mean_square`` rewrites it as ``ReduceMean(Pow(x - mean, 2))``, the form both fuse into
one normalisation kernel (the same value up to float rounding).

Every Linear weight is exported as ``MatMul(x, Transpose(W))``. ``fold_constant_transposes`` stores ``W``
transposed instead, so the MatMul reads a plain constant: NNCF then quantizes the weight where OpenVINO's
low-precision passes can run the layer as an int8 FullyConnected (behind the Transpose they stayed f32).
"""


def _producers(graph):
    return {out: node for node in graph.node for out in node.output}


def _match_erf(where, producer):
    """The input ``a`` if ``where`` computes ``erf(a)`` as ``erf_exportable`` exports it, else None.

    The exported structure: ``Where(a >= 0, y, Neg(y))`` with ``y = Sub(1, Mul(poly, Exp(Mul(Neg(|a|), |a|))))``
    and ``a >= 0`` exported as ``Not(Less(a, 0))`` (or ``GreaterOrEqual(a, 0)``).
    """
    if len(where.input) != 3:
        return None
    cond, y, neg_y = (producer.get(name) for name in where.input)
    if neg_y is None or neg_y.op_type != "Neg" or neg_y.input[0] != where.input[1]:
        return None
    a = _non_negative_test_input(cond, producer)
    if a is None:
        return None
    if y is None or y.op_type != "Sub":
        return None
    return a if _is_poly_times_exp_neg_square(producer.get(y.input[1]), a, producer) else None


def _non_negative_test_input(cond, producer):
    """The input ``a`` if ``cond`` computes ``a >= 0`` as ``Not(Less(a, 0))`` or ``GreaterOrEqual(a, 0)``, else
    None."""
    if cond is None:
        return None
    if cond.op_type == "Not":
        cond = producer.get(cond.input[0])
        if cond is None or cond.op_type != "Less":
            return None
    elif cond.op_type != "GreaterOrEqual":
        return None
    return cond.input[0]


def _is_poly_times_exp_neg_square(tail, a, producer):
    """Whether ``tail`` is ``Mul(poly, Exp(Mul(Neg(|a|), |a|)))`` (either operand order)."""
    if tail is None or tail.op_type != "Mul":
        return False
    exp = next((producer.get(name) for name in tail.input if getattr(producer.get(name), "op_type", "") == "Exp"),
               None)
    if exp is None:
        return False
    square = producer.get(exp.input[0])
    if square is None or square.op_type != "Mul":
        return False
    operands = [producer.get(name) for name in square.input]
    ops_ = sorted(getattr(node, "op_type", "") for node in operands)
    if ops_ != ["Abs", "Neg"]:
        return False
    absolute = next(node for node in operands if node.op_type == "Abs")
    negated = next(node for node in operands if node.op_type == "Neg")
    return absolute.input[0] == a and negated.input[0] == absolute.output[0]


def remove_dead_nodes(graph):
    """Drop nodes and initializers no graph output depends on."""
    needed = {out.name for out in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(out in needed for out in node.output):
            keep.append(node)
            needed.update(name for name in node.input if name)
    keep.reverse()
    removed = len(graph.node) - len(keep)
    del graph.node[:]
    graph.node.extend(keep)
    unused = [init for init in graph.initializer if init.name not in needed]
    for init in unused:
        graph.initializer.remove(init)
    return removed


def restore_erf(model):
    """Replace every exported erf subgraph with an ``Erf`` node; returns how many were replaced."""
    from onnx import helper

    graph = model.graph
    producer = _producers(graph)
    replaced = 0
    for index, node in enumerate(list(graph.node)):
        if node.op_type != "Where":
            continue
        a = _match_erf(node, producer)
        if a is None:
            continue
        erf = helper.make_node("Erf", [a], list(node.output), name=f"{node.name or 'Where'}_erf")
        graph.node.remove(node)
        graph.node.insert(index, erf)
        replaced += 1
    if replaced:
        remove_dead_nodes(graph)
    return replaced


def _consumers(graph):
    out = {}
    for node in graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def variance_as_mean_square(model):
    """Rewrite every exported LayerNorm variance ``Div(ReduceSumSquare(x - ReduceMean(x)), n)`` as
    ``ReduceMean(Pow(x - ReduceMean(x), 2))`` over the same axes; returns how many were rewritten."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    producer, consumers = _producers(graph), _consumers(graph)
    two = "variance_as_mean_square_two"
    rewritten = 0
    for node in list(graph.node):
        if node.op_type != "ReduceSumSquare":
            continue
        centered = producer.get(node.input[0])
        mean = producer.get(centered.input[1]) if centered is not None and centered.op_type == "Sub" else None
        users = consumers.get(node.output[0], [])
        if mean is None or mean.op_type != "ReduceMean" or mean.input[0] != centered.input[0] or \
                len(users) != 1 or users[0].op_type != "Div" or users[0].input[0] != node.output[0]:
            continue
        div = users[0]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        index = list(graph.node).index(node)
        square = helper.make_node("Pow", [node.input[0], two], [f"{node.output[0]}_square"], name=f"{node.name}_pow")
        variance = helper.make_node("ReduceMean", [square.output[0]], list(div.output), name=f"{node.name}_mean",
                                    **attrs)
        graph.node.remove(node)
        graph.node.remove(div)
        graph.node.insert(index, variance)
        graph.node.insert(index, square)
        rewritten += 1
    if rewritten:
        graph.initializer.append(numpy_helper.from_array(np.array(2.0, np.float32), two))
        remove_dead_nodes(graph)  # the divisors n
    return rewritten


def fold_constant_transposes(model):
    """Replace ``Transpose(initializer)`` by the transposed initializer; returns how many were folded."""
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    folded = 0
    for node in list(graph.node):
        if node.op_type != "Transpose" or node.input[0] not in initializers:
            continue
        perm = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "perm"), None)
        value = numpy_helper.to_array(initializers[node.input[0]])
        graph.initializer.append(numpy_helper.from_array(value.transpose(perm) if perm else value.T, node.output[0]))
        graph.node.remove(node)
        folded += 1
    if folded:
        remove_dead_nodes(graph)  # the untransposed originals no other node reads
    return folded
