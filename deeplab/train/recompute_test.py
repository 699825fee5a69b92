"""Recomputation gives the gradients and BatchNorm updates of the plain network."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from deeplab.model.batch_norm import BatchNormalization
from deeplab.model.deeplab import build_model
from deeplab.model.options import ModelOptions
from deeplab.train.flags import define_train_flags, train_options_from_flags
from deeplab.train.options import TrainOptions
from deeplab.train.recompute import _plan, recomputing, segment_key


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(1)
    model = build_model(ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.25,
                                     num_classes=3, decoder_output_stride=4))
    for layer in model.layers:  # ASPP's dropout: two calls would draw different masks
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    return model


def _moving(model):
    return [v for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, BatchNormalization)
            for v in (layer.moving_mean, layer.moving_variance)]


def _step(model, forward, images, labels, graph: bool):
    """Gradients of a cross entropy and the moving statistics after one training call,
    from the model's current state (restored afterwards)."""
    before = [v.numpy() for v in _moving(model)]

    def grads():
        with tf.GradientTape() as tape:
            logits = forward(images, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels, tf.image.resize(logits, labels.shape[1:3])))
        return tape.gradient(loss, model.trainable_variables)

    result = tf.function(grads)() if graph else grads()
    after = [v.numpy() for v in _moving(model)]
    for v, value in zip(_moving(model), before, strict=True):
        v.assign(value)
    return [g.numpy() for g in result], after


def test_segments_are_units_then_scopes():
    assert segment_key("xception_65.middle_flow.block1.unit_4.xception_module.add",
                       "blocks") is None  # kept: see recompute._AT_OUTPUT_STRIDE
    assert segment_key("xception_65.middle_flow.block1.unit_3.xception_module.add",
                       "blocks") == "xception_65.middle_flow.block1.unit_3"
    assert segment_key("MobilenetV2.expanded_conv_4.expand", "blocks") == \
        "MobilenetV2.expanded_conv_4"
    assert segment_key("xception_65.middle_flow.block1.unit_3.xception_module.add",
                       "all") == "xception_65.middle_flow.block1.unit_3"
    assert segment_key("xception_65.entry_flow.block1.unit_1.xception_module.add",
                       "blocks") == "xception_65.entry_flow.block1.unit_1"
    assert segment_key("aspp0", "blocks") is None
    assert segment_key("xception_65.entry_flow.block1.unit_1.x", "all", random=True) is None
    assert segment_key("decoder.feature_projection0", "all") == "decoder"
    with pytest.raises(ValueError, match="recompute='some'"):
        recomputing(None, "some")


def test_option_and_flag():
    fv = flags.FlagValues()
    define_train_flags(fv)
    fv(["train.py", "--recompute=blocks"])
    assert train_options_from_flags(fv).recompute == "blocks"
    assert TrainOptions(train_logdir="").recompute == "none"
    with pytest.raises(ValueError, match="recompute must be one of"):
        TrainOptions(train_logdir="", recompute="some")


@pytest.mark.parametrize("mode,graph", [("blocks", True), ("all", False)])
def test_gradients_and_moving_statistics_match(model, mode, graph):
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (2, 33, 33, 3)), tf.float32)
    labels = tf.constant(rng.integers(0, 3, (2, 33, 33)), tf.int32)
    plan = _plan(model, mode)
    keys = {key for _, key, _, _ in plan if key is not None}
    assert not any(isinstance(n.operation, keras.layers.Dropout)
                   for nodes, key, _, _ in plan if key is not None for n in nodes)
    assert len(keys) >= (16 if mode == "blocks" else 19)  # 16 units (+ root, head, logits)
    plain, plain_moving = _step(model, model, images, labels, graph)
    again, again_moving = _step(model, recomputing(model, mode), images, labels, graph)
    initial = [v.numpy() for v in _moving(model)]
    assert len(plain) == len(model.trainable_variables)
    for a, b in zip(plain, again, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    for a, b in zip(plain_moving, again_moving, strict=True):
        # updated once: the same value as without recomputation (and not the start value)
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9)
    assert any(not np.allclose(a, s) for a, s in zip(plain_moving, initial, strict=True))
