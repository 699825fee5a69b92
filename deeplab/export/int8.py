"""TFLite full-integer (INT8) model: post-training quantisation calibrated on real images.

Weights are int8 per output channel and activations int8 per tensor, their ranges measured
by running the float graph on the calibration images (a split of the dataset, see
export_model.py --calibration_split). The interface is the float model's: uint8
`ImageTensor` [1, ?, ?, 3] in, float32 probabilities and int32 labels out (the
converter adds the (de)quantise ops at the edges); ops without an int8 kernel stay float.
Run it with `deeplab.export.runtimes.TfliteModel` (XNNPACK's int8 kernels).

Verification is looser than for float formats: int8 moves probabilities by a few percent,
so the check is on label agreement (>= 90 % on the verification images, a random-weight
network's margins being small) and finite values. When export is given an evaluation split
(export_model.py --quantized_eval_split), the mIoU of both models on it is reported and the
export fails if the INT8 model's is more than 2 points lower.
"""

from __future__ import annotations

import tensorflow as tf

from deeplab.export import verify
from deeplab.utils.quiet import cpp_stderr

FILE_NAME = "model_int8.tflite"
TOLERANCE = verify.Tolerance(max_abs_diff=1.0, mean_abs_diff=0.05, min_label_agreement=0.9,
                             max_miou_drop=2.0)


def convert(frozen_function, calibration) -> bytes:
    """The full-integer TFLite flatbuffer of a frozen concrete function.

    calibration: uint8 [1, H, W, 3] images (any sizes); a few dozen are enough.
    """
    images = [tf.constant(image) for image in calibration]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen_function])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image] for image in images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    with cpp_stderr():  # the converter's C++ INFO lines (fully_quantize: 0, ...)
        return converter.convert()


def write_int8(source, path: str) -> str:
    """Writes the INT8 model of `source` (a `deeplab.export.formats.WriteSource` with
    calibration images) to `path`; returns `path`."""
    flatbuffer = convert(source.frozen_function, source.calibration)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path
