"""ONNX export through tf2onnx, from the frozen graph.

The model keeps the frozen graph's interface: input `ImageTensor:0` uint8 [1, h, w, 3] with
dynamic h and w; outputs `SemanticPredictions:0` int32 [1, h, w] and
`SemanticProbabilities:0` float32 [1, h, w, C]. Needs `tf2onnx` (and `onnxruntime` to run
and verify it): pip install tf2onnx==1.17.0 onnxruntime.
"""

from __future__ import annotations

import importlib.util
import logging

from deeplab.export.contract import INPUT_NAME, LABELS_NAME, PROBABILITIES_NAME
from deeplab.export.errors import ExportError

FILE_NAME = "model.onnx"
DEFAULT_OPSET = 17
INPUT = f"{INPUT_NAME}:0"
OUTPUTS = (f"{LABELS_NAME}:0", f"{PROBABILITIES_NAME}:0")
PACKAGES = ("tf2onnx", "onnxruntime")


def require_onnx_packages() -> None:
    """Raises ExportError naming the missing package(s) and the pip command."""
    missing = [name for name in PACKAGES
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"--format=onnx needs {' and '.join(missing)}: "
                          "pip install tf2onnx==1.17.0 onnxruntime")


def convert(graph_def, opset: int = DEFAULT_OPSET):
    """ONNX ModelProto of the frozen GraphDef (dynamic height and width)."""
    require_onnx_packages()
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    import tf2onnx  # noqa: PLC0415 - optional dependency, imported on use

    model, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=[INPUT],
                                              output_names=list(OUTPUTS), opset=opset)
    return model


def write_onnx(frozen_function, path: str, opset: int = DEFAULT_OPSET) -> str:
    """Converts the frozen function's graph and writes `path`; returns `path`."""
    model = convert(frozen_function.graph.as_graph_def(), opset)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path
