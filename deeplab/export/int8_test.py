"""The tflite_int8 export is laid out for XNNPACK: plain 1x1 and dilated convolutions, no
standalone int8 ReLU, and it still passes the export's verification."""

from __future__ import annotations

import collections
import os
import warnings

import keras
import pytest
import tensorflow as tf

from deeplab.export import exporter, frozen, int8, tflite_graph
from deeplab.export.contract import ExportModule, ExportOptions
from deeplab.export.testing import TINY_OPTIONS, calibrate_batch_norm
from deeplab.export.verify import sample_images
from deeplab.model import folded_conv
from deeplab.model.batch_norm import BatchNormalization

CROP = (33, 41)
SLOW_PATHS = {"FULLY_CONNECTED", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "RELU"}


def _folded(layer, x):
    norm = BatchNormalization()
    out = norm(layer(x))
    folded_conv.fold_batch_norm(layer, norm)
    return out


def _atrous_residual_model() -> keras.Model:
    """[B, H, W, 3] -> logits at stride 4: Xception-like units (ReLU of the residual sum,
    depthwise 3x3 with rates 1 and 2, 1x1), BatchNorm folded and calibrated."""
    keras.utils.set_random_seed(3)
    images = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(2.0 / 255.0, offset=-1.0)(images)
    x = _folded(folded_conv.Conv2D(8, 3, strides=4, padding="same", use_bias=False), x)
    for rate in (1, 2):
        y = keras.layers.ReLU()(x)
        y = _folded(folded_conv.DepthwiseConv2D(3, padding="same", dilation_rate=rate,
                                                use_bias=False), y)
        x = keras.layers.Add()([x, _folded(folded_conv.Conv2D(8, 1, use_bias=False), y)])
    logits = folded_conv.Conv2D(TINY_OPTIONS.num_classes, 1)(keras.layers.ReLU()(x))
    model = keras.Model(images, logits)
    calibrate_batch_norm(model)
    return model


def _partitions(path: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=path, num_threads=1)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], (1, *CROP, 3))
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    return collections.Counter(op["op_name"] for op in ops)["DELEGATE"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(module, calibration, path of the tflite_int8 export, its verification figures)."""
    module = ExportModule(_atrous_residual_model(), TINY_OPTIONS, ExportOptions(CROP))
    calibration = sample_images(CROP, seed=7)
    out = str(tmp_path_factory.mktemp("int8") / "out")
    figures = exporter.export(module, out, ["tflite_int8"], calibration=calibration,
                              log=lambda line: None)
    return module, calibration, os.path.join(out, int8.FILE_NAME), figures[int8.FILE_NAME]


def test_export_has_no_op_that_leaves_xnnpack_and_is_verified(exported, tmp_path):
    module, calibration, path, figures = exported
    assert figures["ok"] and figures["label_agreement"] >= int8.TOLERANCE.min_label_agreement
    with open(path, "rb") as f:
        ops = tflite_graph.op_counts(f.read())
    assert not SLOW_PATHS & set(ops), ops
    # What the converter writes from the graph every other format reads has them all.
    as_converted = int8.convert(frozen.freeze(module), calibration, delegable=False)
    assert SLOW_PATHS <= set(tflite_graph.op_counts(as_converted))
    before = tmp_path / "as_converted.tflite"
    before.write_bytes(as_converted)
    assert _partitions(path) < _partitions(str(before))


def test_plain_tracing_leaves_the_module_as_it_was(exported):
    module = exported[0]
    ops = {op.type for op in frozen.freeze(module).graph.get_operations()}
    assert {"MatMul", "SpaceToBatchND"} <= ops  # the other formats keep the faster TF graph
