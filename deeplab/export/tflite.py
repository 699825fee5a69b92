"""TFLite flatbuffers: float32, and optionally dynamic-range quantised (int8 weights).

Conversion route (measured on TF 2.21 / Keras 3.15): the converter must read the *frozen*
concrete function (variables already constants, `deeplab.export.frozen.freeze`). Converting
the unfrozen function or the SavedModel succeeds without an error but writes a ~0.2 MB model
that lost its weights and returns NaN. The frozen route keeps the dynamic input
`ImageTensor` uint8 [1, ?, ?, 3]; the interpreter is resized to each image's shape.
Outputs (no signature): int32 [1, H, W] labels and float32 [1, H, W, C] probabilities.
"""

from __future__ import annotations

import tensorflow as tf

from deeplab.utils.quiet import cpp_stderr

FILE_NAME = "model.tflite"
QUANTIZED_FILE_NAME = "model_dynamic_range.tflite"


def convert(frozen_function, quantize: bool = False) -> bytes:
    """The TFLite flatbuffer of a frozen concrete function; `quantize`: dynamic-range."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen_function])
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with cpp_stderr():  # the converter's C++ INFO lines
        return converter.convert()


def write_tflite(frozen_function, path: str, quantize: bool = False) -> str:
    """Converts and writes `path`; returns `path`."""
    flatbuffer = convert(frozen_function, quantize)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path
