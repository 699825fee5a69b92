"""Conv2D / DepthwiseConv2D: Keras' own results, with a linked BatchNorm folded in."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.model.batch_norm import BatchNormalization
from deeplab.model.folded_conv import Conv2D, DepthwiseConv2D, fold_batch_norm, plain_convolutions

RNG = np.random.default_rng(0)


def _randomise_norm(norm: keras.layers.BatchNormalization):
    channels = norm.gamma.shape[0]
    norm.gamma.assign(RNG.uniform(0.5, 2.0, channels))
    norm.beta.assign(RNG.normal(size=channels))
    norm.moving_mean.assign(RNG.normal(size=channels))
    norm.moving_variance.assign(RNG.uniform(0.2, 3.0, channels))


def _pair(kind: str, config: dict, input_shape, dtype="float32"):
    """(ours: conv -> BN folded, Keras: conv -> BN) with equal random weights."""
    conv_cls, keras_cls = {"conv": (Conv2D, keras.layers.Conv2D),
                           "depthwise": (DepthwiseConv2D, keras.layers.DepthwiseConv2D)}[kind]
    models = []
    for conv_type, norm_type in ((conv_cls, BatchNormalization),
                                 (keras_cls, keras.layers.BatchNormalization)):
        inputs = keras.Input(input_shape[1:])
        conv = conv_type(**config, dtype=dtype)
        norm = norm_type(epsilon=1e-3, dtype=dtype)
        outputs = norm(conv(inputs))
        if conv_type is conv_cls:
            fold_batch_norm(conv, norm)
        models.append((keras.Model(inputs, outputs), conv, norm))
    (ours, conv, norm), (reference, ref_conv, ref_norm) = models
    _randomise_norm(norm)
    ref_conv.set_weights(conv.get_weights())
    ref_norm.set_weights(norm.get_weights())
    return ours, reference


CONFIGS = [
    ("conv", dict(filters=6, kernel_size=3, padding="same", use_bias=False)),
    ("conv", dict(filters=6, kernel_size=3, strides=2, padding="valid", use_bias=True)),
    ("conv", dict(filters=6, kernel_size=3, dilation_rate=2, padding="same", use_bias=False)),
    ("conv", dict(filters=7, kernel_size=1, use_bias=False)),
    ("conv", dict(filters=7, kernel_size=1, strides=2, padding="same", use_bias=True)),
    ("conv", dict(filters=7, kernel_size=1, strides=2, padding="valid", use_bias=False)),
    ("depthwise", dict(kernel_size=3, padding="same", use_bias=False)),
    ("depthwise", dict(kernel_size=3, dilation_rate=2, padding="same", use_bias=False)),
    ("depthwise", dict(kernel_size=3, strides=2, depth_multiplier=2, use_bias=True)),
]


@pytest.mark.parametrize("kind,config", CONFIGS)
def test_folded_inference_equals_keras_conv_then_batch_norm(kind, config):
    shape = (2, 9, 11, 5)  # odd sizes: strided outputs round up or down by padding
    ours, reference = _pair(kind, config, shape)
    x = RNG.normal(size=shape).astype(np.float32)
    expected = reference(x, training=False).numpy()
    got = ours(x, training=False).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # And with every size unknown at trace time.
    fn = tf.function(lambda t: ours(t, training=False),
                     input_signature=[tf.TensorSpec([None, None, None, 5])])
    np.testing.assert_allclose(fn(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_bfloat16_folding_is_as_close_as_bfloat16_rounding():
    policy = keras.mixed_precision.DTypePolicy("mixed_bfloat16")
    shape = (1, 8, 8, 16)
    ours, reference = _pair("conv", dict(filters=8, kernel_size=1, use_bias=False), shape,
                            dtype=policy)
    x = RNG.normal(size=shape).astype(np.float32)
    got = ours(x, training=False)
    assert got.dtype == tf.bfloat16
    _, ref32 = _pair("conv", dict(filters=8, kernel_size=1, use_bias=False), shape)
    ref32.set_weights(ours.get_weights())  # Keras conv -> Keras BN, float32
    exact = ref32(x, training=False).numpy()
    error = np.abs(tf.cast(got, tf.float32).numpy() - exact)
    # A few bfloat16 roundings (2^-8 relative each) of values of size ~|exact| + offset.
    assert error.max() <= 0.05 * (np.abs(exact).max() + 1.0)
    assert reference(x, training=False).dtype == tf.bfloat16


def test_training_with_batch_statistics_folds_nothing():
    shape = (4, 6, 6, 3)
    ours, reference = _pair("conv", dict(filters=4, kernel_size=3, padding="same",
                                         use_bias=False), shape)
    x = RNG.normal(size=shape).astype(np.float32)
    with tf.GradientTape(persistent=True) as tape:
        got = ours(x, training=True)
        expected = reference(x, training=True)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    # Batch statistics, not the moving ones: every channel has mean ~beta.
    beta = ours.layers[-1].beta.numpy()
    np.testing.assert_allclose(got.numpy().mean(axis=(0, 1, 2)), beta, atol=1e-4)
    np.testing.assert_allclose(ours.layers[-1].moving_mean.numpy(),
                               reference.layers[-1].moving_mean.numpy(), rtol=1e-6)
    grads = tape.gradient(got, ours.trainable_weights)
    ref_grads = tape.gradient(expected, reference.trainable_weights)
    for a, b in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


def test_frozen_batch_norm_is_folded_while_training_with_keras_gradients():
    shape = (2, 7, 7, 3)
    ours, reference = _pair("conv", dict(filters=4, kernel_size=1, use_bias=False), shape)
    for model in (ours, reference):
        model.layers[-1].trainable = False
    x = tf.constant(RNG.normal(size=shape).astype(np.float32))
    results = []
    for model in (ours, reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x, training=True)
            loss = tf.reduce_sum(y * y)
        results.append([y, *tape.gradient(loss, [x, *model.trainable_weights])])
    assert len(results[0]) == 3  # y, d/dx, d/dkernel: gamma and beta are frozen
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


def test_links_add_no_weights_and_a_clone_is_unfolded_but_equal():
    shape = (1, 5, 5, 3)
    ours, reference = _pair("conv", dict(filters=4, kernel_size=3, padding="same",
                                         use_bias=False), shape)
    conv, norm = ours.layers[1], ours.layers[2]
    assert [w.path for w in conv.weights] == [f"{conv.name}/kernel"]
    assert len(ours.weights) == len(reference.weights) == 5
    clone = keras.models.clone_model(ours)
    clone.set_weights(ours.get_weights())
    assert clone.layers[1]._folded_norm is None and clone.layers[2]._folded_into is None
    x = RNG.normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(clone(x, training=False).numpy(),
                               ours(x, training=False).numpy(), rtol=1e-5, atol=1e-5)
    assert norm._folded_into() is conv


def test_other_norms_are_not_linked():
    conv = Conv2D(4, 3)
    group = keras.layers.GroupNormalization(groups=2)
    fold_batch_norm(conv, group)
    assert conv._folded_norm is None


@pytest.mark.parametrize("kind,config", CONFIGS)
def test_plain_convolutions_trace_one_conv_op_and_compute_the_same(kind, config):
    shape = (1, 9, 11, 5)
    ours, reference = _pair(kind, config, shape)
    x = RNG.normal(size=shape).astype(np.float32)
    fn = tf.function(lambda t: ours(t, training=False))
    with plain_convolutions(ours):
        plain = fn.get_concrete_function(tf.TensorSpec(shape))
    ops = {op.type for op in plain.graph.get_operations()}
    assert not ops & {"MatMul", "SpaceToBatchND", "BatchToSpaceND"}, ops
    assert ops & {"Conv2D", "DepthwiseConv2dNative"}
    np.testing.assert_allclose(plain(tf.constant(x)).numpy(),
                               reference(x, training=False).numpy(), rtol=1e-5, atol=1e-5)
    outside = fn.get_concrete_function(tf.TensorSpec([None, 9, 11, 5]))  # flag reset on exit
    if config["kernel_size"] == 1:
        assert "MatMul" in {op.type for op in outside.graph.get_operations()}
