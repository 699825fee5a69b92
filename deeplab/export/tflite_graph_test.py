"""Standalone int8 ReLUs become fused identity depthwise convolutions: bit-identical outputs,
one XNNPACK partition instead of several."""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest
import tensorflow as tf

from deeplab.export import int8, tflite_graph

RNG = np.random.default_rng(0)
SHAPE = (1, 9, 11, 8)


def _residual_relu_function():
    """A residual unit whose ReLU the converter cannot fuse: the sum it reads also feeds
    the next residual add, as in Xception's units."""
    kernel = tf.constant(RNG.normal(0, 0.3, (1, 1, 8, 8)), tf.float32)
    depthwise = tf.constant(RNG.normal(0, 0.5, (3, 3, 8, 1)), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec(SHAPE, tf.float32)])
    def unit(x):
        for _ in range(2):
            y = tf.nn.depthwise_conv2d(tf.nn.relu(x), depthwise, [1, 1, 1, 1], "SAME")
            x = x + tf.nn.conv2d(y, kernel, 1, "SAME")
        return tf.nn.relu6(x)

    return unit.get_concrete_function()


def _interpreter(flatbuffer: bytes, delegate: bool = True):
    kind = tf.lite.experimental.OpResolverType
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(
            model_content=flatbuffer, num_threads=1,
            experimental_op_resolver_type=kind.AUTO if delegate
            else kind.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return interpreter


def _run(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    interpreter = _interpreter(flatbuffer)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.fixture(scope="module")
def converted() -> bytes:
    calibration = [RNG.normal(0, 1, SHAPE).astype(np.float32) for _ in range(4)]
    return int8.convert(_residual_relu_function(), calibration, delegable=False)


def test_standalone_relus_become_fused_depthwise_convolutions(converted):
    before = tflite_graph.op_counts(converted)
    assert before["RELU"] == 2  # each unit's pre-activation; the last RELU6 is fused or not
    rewritten, replaced = tflite_graph.delegate_int8_activations(converted)
    after = tflite_graph.op_counts(rewritten)
    assert replaced == before["RELU"] + before["RELU6"]
    assert after["RELU"] == after["RELU6"] == 0
    assert after["DEPTHWISE_CONV_2D"] == before["DEPTHWISE_CONV_2D"] + replaced
    assert sum(after.values()) == sum(before.values())


def test_outputs_are_bit_identical(converted):
    rewritten, _ = tflite_graph.delegate_int8_activations(converted)
    for seed in range(3):
        x = np.random.default_rng(seed).normal(0, 2, SHAPE).astype(np.float32)
        np.testing.assert_array_equal(_run(rewritten, x), _run(converted, x))


def test_xnnpack_then_runs_the_whole_graph_as_one_partition(converted):
    rewritten, _ = tflite_graph.delegate_int8_activations(converted)

    def partitions(flatbuffer):
        ops = _interpreter(flatbuffer)._get_ops_details()
        return collections.Counter(op["op_name"] for op in ops)["DELEGATE"]

    assert partitions(converted) >= 3  # split around each int8 RELU
    assert partitions(rewritten) == 1


def test_float_relus_are_left_alone():
    function = _residual_relu_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    flatbuffer = converter.convert()
    assert tflite_graph.op_counts(flatbuffer)["RELU"] == 2
    assert tflite_graph.delegate_int8_activations(flatbuffer) == (flatbuffer, 0)
