"""TFLite full-integer (INT8) model: post-training quantisation calibrated on real images.

Weights are int8 per output channel and activations int8 per tensor, their ranges measured
by running the float graph on the calibration images (a split of the dataset, see
export_model.py --calibration_split). The interface is the float model's: uint8
`ImageTensor` [1, ?, ?, 3] in, float32 probabilities and int32 labels out (the
converter adds the (de)quantise ops at the edges); ops without an int8 kernel stay float.
Run it with `deeplab.export.runtimes.TfliteModel` (XNNPACK's int8 kernels).

Made for XNNPACK (measured in bench/README.md, "INT8 engines"): the network is traced with
plain convolutions (`deeplab.model.folded_conv.plain_convolutions`: 1x1 as CONV_2D, dilated
depthwise as one DEPTHWISE_CONV_2D) and every standalone int8 RELU is rewritten as a fused
identity depthwise convolution (`deeplab.export.tflite_graph`), so XNNPACK runs the whole
network as one delegated partition instead of ~95 pieces around TFLite's own kernels.

Verification is looser than for float formats: int8 moves probabilities by a few percent,
so the check is on label agreement (>= 90 % on the verification images, a random-weight
network's margins being small) and finite values. When export is given an evaluation split
(export_model.py --quantized_eval_split), the mIoU of both models on it is reported and the
export fails if the INT8 model's is more than 2 points lower.
"""

from __future__ import annotations

import warnings

import tensorflow as tf

from deeplab.export import frozen, tflite_graph, verify
from deeplab.model import folded_conv
from deeplab.utils.quiet import cpp_stderr

FILE_NAME = "model_int8.tflite"
TOLERANCE = verify.Tolerance(max_abs_diff=1.0, mean_abs_diff=0.05, min_label_agreement=0.9,
                             max_miou_drop=2.0)


def convert(frozen_function, calibration, delegable: bool = True) -> bytes:
    """The full-integer TFLite flatbuffer of a frozen concrete function, its standalone
    int8 ReLUs made delegable (`deeplab.export.tflite_graph.delegate_int8_activations`).

    calibration: uint8 [1, H, W, 3] images (any sizes); a few dozen are enough.
    delegable: False keeps the converter's flatbuffer as it is (bench/int8_engines.py
    measures that one too).
    """
    images = [tf.constant(image) for image in calibration]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen_function])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image] for image in images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    with cpp_stderr(), warnings.catch_warnings():  # C++ INFO lines (fully_quantize: 0, ...)
        # the uint8 input is raw pixels: it has no (mean, std) statistics to give
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        flatbuffer = converter.convert()
    return tflite_graph.delegate_int8_activations(flatbuffer)[0] if delegable else flatbuffer


def plain_frozen_function(module):
    """The module's frozen original interface (`deeplab.export.frozen.freeze`) traced with
    plain convolutions, the graph `convert` reads."""
    with folded_conv.plain_convolutions(module.model):
        return frozen.freeze(module)


def write_int8(source, path: str) -> str:
    """Writes the INT8 model of `source` (a `deeplab.export.formats.WriteSource` with
    calibration images) to `path`; returns `path`."""
    flatbuffer = convert(plain_frozen_function(source.module), source.calibration)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path
