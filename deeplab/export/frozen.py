"""Frozen GraphDef with the original DeepLab's interface (frozen_inference_graph.pb).

The graph has a Placeholder `ImageTensor` (uint8 [1, ?, ?, 3]) and the nodes
`SemanticPredictions` (int32 [1, H, W]) and `SemanticProbabilities` (float32 [1, H, W, C]),
so TF1-style code that imports the original's published graphs runs it unchanged:

    tf.compat.v1.import_graph_def(graph_def, name="")
    sess.run("SemanticPredictions:0", feed_dict={"ImageTensor:0": image})
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow.python.framework import convert_to_constants

from deeplab.export.contract import INPUT_NAME, LABELS_NAME, PROBABILITIES_NAME, ExportModule
from deeplab.export.errors import ExportError

FILE_NAME = "frozen_inference_graph.pb"
REQUIRED_NODES = {INPUT_NAME: "Placeholder", LABELS_NAME: "Identity",
                  PROBABILITIES_NAME: "Identity"}


def freeze(module: ExportModule):
    """The module's original-interface function with variables folded into constants.

    Returns a ConcreteFunction on uint8 [1, ?, ?, 3]; its `.graph.as_graph_def()` is the
    frozen graph, and it is also the source the ONNX and TFLite converters read.
    """
    return convert_to_constants.convert_variables_to_constants_v2(module.original_interface())


def check_node_names(graph_def, path: str = "frozen graph") -> None:
    """Raises ExportError unless the original's node names exist with the expected ops."""
    ops = {node.name: node.op for node in graph_def.node}
    wrong = [f"{name} ({'missing' if name not in ops else ops[name]})"
             for name, op in REQUIRED_NODES.items() if ops.get(name) != op]
    if wrong:
        raise ExportError(f"{path}: node(s) {', '.join(wrong)} do not match the original's "
                          f"interface {REQUIRED_NODES}")


def write_frozen_graph(frozen_function, path: str) -> str:
    """Serialises the frozen function's GraphDef to `path` (binary .pb); returns `path`."""
    graph_def = frozen_function.graph.as_graph_def()
    check_node_names(graph_def, path)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(graph_def.SerializeToString())
    return path


def read_graph_def(path: str):
    """The GraphDef stored in a binary .pb file; ExportError when it cannot be parsed."""
    graph_def = tf.compat.v1.GraphDef()
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            graph_def.ParseFromString(f.read())
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and others
        raise ExportError(f"{path}: not a binary GraphDef ({exc})") from None
    return graph_def
