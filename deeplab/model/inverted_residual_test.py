"""The inverted-residual block and its squeeze-excite against formulas written out with tf.nn.

The expected values restate the original's conv_blocks.expanded_conv / squeeze_excite
(README "New variants"), with the gate constant 0.16667 and hard-swish's 1/6 typed in here.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.model.activations import hard_swish
from deeplab.model.inverted_residual import (
    InvertedResidual,
    inverted_residual,
    make_divisible,
    squeeze_excite,
)
from deeplab.model.layers import NormSpec

NORM = NormSpec(epsilon=1e-3, decay=0.997)


def _randomise(model, seed=0):
    """Random weights everywhere; BN variances positive."""
    rs = np.random.RandomState(seed)
    for var in model.weights:
        value = rs.normal(0, 0.5, var.shape)
        if var.name == "moving_variance":
            value = rs.uniform(0.5, 1.5, var.shape)
        var.assign(value.astype(np.float32))


def _bn(model, scope, x):
    norm = model.get_layer(f"{scope}.BatchNorm")
    gamma, beta, mean, var = (w.numpy() for w in norm.weights)
    return (x - mean) / np.sqrt(var + 1e-3) * gamma + beta


def _images(h, w, c, seed=1):
    return np.random.RandomState(seed).uniform(-2, 2, (1, h, w, c)).astype(np.float32)


def test_make_divisible_rule():
    assert make_divisible(12, 8) == 16  # halves round up
    assert make_divisible(4, 8) == 8  # at least the divisor
    assert make_divisible(10, 8) == 16  # 8 would be more than 10 % below 10
    assert make_divisible(336 / 4, 8) == 88  # MobileNetV3 expanded_conv_12's squeeze
    assert make_divisible(80 * 184 / 80, 8) == 184


def test_squeeze_excite_formula():
    inputs = keras.Input((None, None, 24))
    model = keras.Model(inputs, squeeze_excite(inputs, "b"))
    _randomise(model)
    x = _images(5, 4, 24)
    w1, b1 = (v.numpy() for v in model.get_layer("b.squeeze_excite.Conv").weights)
    w2, b2 = (v.numpy() for v in model.get_layer("b.squeeze_excite.Conv_1").weights)
    assert w1.shape == (1, 1, 24, 8) and w2.shape == (1, 1, 8, 24)  # 24 / 4 -> 8
    pooled = x.mean(axis=(1, 2), keepdims=True)
    squeezed = np.maximum(pooled @ w1[0, 0] + b1, 0)
    gate = np.clip(squeezed @ w2[0, 0] + b2 + 3, 0, 6) * np.float32(0.16667)
    np.testing.assert_allclose(model(x), x * gate, rtol=1e-5, atol=1e-6)


def test_regular_block_with_squeeze_excite_and_residual():
    block = InvertedResidual(16, expansion=3, kernel=5, activation=hard_swish,
                             squeeze_excite=True)
    inputs = keras.Input((None, None, 16))
    out, depthwise = inverted_residual(inputs, block, 16, "b", NORM)
    model = keras.Model(inputs, [out, depthwise])
    _randomise(model)
    x = _images(6, 7, 16)
    y, dw = model(x)

    def hswish(v):
        return v * np.clip(v + 3, 0, 6) * np.float32(1 / 6)

    expand = hswish(_bn(model, "b.expand", tf.nn.conv2d(x, model.get_layer("b.expand").kernel,
                                                         1, "SAME").numpy()))
    assert expand.shape[-1] == 48
    dw_kernel = model.get_layer("b.depthwise").kernel
    expected_dw = hswish(_bn(model, "b.depthwise",
                             tf.nn.depthwise_conv2d(expand, dw_kernel, [1] * 4, "SAME").numpy()))
    np.testing.assert_allclose(dw, expected_dw, rtol=1e-4, atol=1e-4)
    w1, b1 = (v.numpy() for v in model.get_layer("b.squeeze_excite.Conv").weights)
    w2, b2 = (v.numpy() for v in model.get_layer("b.squeeze_excite.Conv_1").weights)
    squeezed = np.maximum(expected_dw.mean(axis=(1, 2), keepdims=True) @ w1[0, 0] + b1, 0)
    gated = expected_dw * np.clip(squeezed @ w2[0, 0] + b2 + 3, 0, 6) * np.float32(0.16667)
    project = _bn(model, "b.project", gated @ model.get_layer("b.project").kernel.numpy()[0, 0])
    np.testing.assert_allclose(y, project + x, rtol=1e-4, atol=1e-4)


def test_fused_block_strides_in_its_expand_with_tf_same_padding():
    block = InvertedResidual(8, expansion=4, stride=2, fused=True)
    inputs = keras.Input((None, None, 8))
    out, depthwise = inverted_residual(inputs, block, 8, "f", NORM, stride=2)
    assert depthwise is None
    model = keras.Model(inputs, out)
    _randomise(model)
    names = {layer.name for layer in model.layers}
    assert "f.depthwise" not in names and "f.add" not in names  # strided: no residual
    x = _images(6, 6, 8)  # even size: SAME pads only after
    expand = tf.nn.conv2d(x, model.get_layer("f.expand").kernel, 2, "SAME").numpy()
    expand = np.maximum(_bn(model, "f.expand", expand), 0)
    expected = _bn(model, "f.project", expand @ model.get_layer("f.project").kernel.numpy()[0, 0])
    np.testing.assert_allclose(model(x), expected, rtol=1e-4, atol=1e-4)


def test_residual_can_be_turned_off_and_unexpanded_fused_block_cannot_stride():
    inputs = keras.Input((None, None, 8))
    out, _ = inverted_residual(inputs, InvertedResidual(8, 4, residual=False), 8, "n", NORM)
    assert out._keras_history.operation.name == "n.project.BatchNorm"
    out, _ = inverted_residual(inputs, InvertedResidual(8, 4), 8, "r", NORM)
    assert out._keras_history.operation.name == "r.add"
    with pytest.raises(ValueError, match="cannot stride"):
        inverted_residual(inputs, InvertedResidual(8, 1, fused=True), 8, "s", NORM, stride=2)
