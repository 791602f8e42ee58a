"""Two edits that some exporters' ONNX files need before they serve, written once.

Some exporters trace the model with one example batch and write its size into the file, and some
keep the Dropout nodes of the training graph (an identity at inference, which ONNX Runtime skips
but not every runtime or converter does). Each framework's export_onnx says which it needed.
Python 3.6 compatible, onnx 1.10 and newer: every environment that exports imports this.
"""
import numpy as np

BATCH = "batch"  # the name of the free first dimension in every file


def without_dropout(model):
    """The model with its Dropout nodes removed, each one's readers wired to its input."""
    graph = model.graph
    drops = [node for node in graph.node if node.op_type == "Dropout"]
    source = {node.output[0]: node.input[0] for node in drops}
    for node in drops:
        graph.node.remove(node)
    for node in graph.node:
        for i, name in enumerate(node.input):
            while name in source:  # a dropout after a dropout
                name = source[name]
            node.input[i] = name
    used = {name for node in graph.node for name in node.input}
    for unused in [t for t in graph.initializer if t.name not in used]:  # the ratio, the training flag
        graph.initializer.remove(unused)
    for unused in [i for i in graph.input if i.name not in used]:
        graph.input.remove(unused)
    return model


def any_batch(model):
    """The model with its first dimension free: the inputs' and outputs' first size becomes BATCH;
    where a Reshape of activations (not of weights) has a target shape that starts with the traced
    batch of one, it starts with 0 instead (ONNX: keep the input's size there); and the shapes
    inferred for a batch of one are dropped."""
    from onnx import numpy_helper  # here, not above: a whole program imports onnx only to export
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    constants = {node.output[0]: node.attribute[0].t for node in graph.node
                 if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value"}
    for value in [i for i in graph.input if i.name not in weights] + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH  # replaces the fixed size
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[0] in weights or node.input[0] in constants:
            continue
        shape = weights.get(node.input[1], constants.get(node.input[1]))
        if shape is not None and numpy_helper.to_array(shape)[0] == 1:
            fixed = numpy_helper.to_array(shape).copy()
            fixed[0] = 0
            shape.CopyFrom(numpy_helper.from_array(fixed.astype(np.int64), shape.name))
    del graph.value_info[:]
    return model
