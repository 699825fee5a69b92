"""Xception under `use_bounded_activation` (the original's quantisation-friendly graph)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.checkpoints.io import variable_map
from deeplab.model import xception
from deeplab.model.backbone_spec import OUTPUT
from deeplab.model.deeplab import backbone_norm
from deeplab.model.options import ModelOptions


def _backbone(bounded: bool) -> keras.Model:
    options = ModelOptions(model_variant="xception_41", use_bounded_activation=bounded)
    images = keras.Input((None, None, 3))
    out = xception.build(images, options, backbone_norm(options))
    return keras.Model(images, [out[OUTPUT], out[4]])


@pytest.fixture(scope="module")
def models():
    """(plain, bounded) xception_41 backbones with the same small-gamma weights, so that no
    activation of the plain one leaves [-6, 6]."""
    plain, bounded = _backbone(False), _backbone(True)
    for layer in plain.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.gamma.assign(np.full(layer.gamma.shape, 0.2, np.float32))
    bounded.set_weights(plain.get_weights())
    return plain, bounded


def _ops(model) -> set[str]:
    fn = tf.function(lambda x: model(x, training=False))
    graph = fn.get_concrete_function(tf.TensorSpec([1, 33, 33, 3], tf.float32)).graph
    return {node.op for node in graph.as_graph_def().node}


def test_same_variables_as_the_plain_network(models):
    plain, bounded = models
    assert {k: tuple(v.shape) for k, v in variable_map(plain).items()} == \
        {k: tuple(v.shape) for k, v in variable_map(bounded).items()}


def test_relu6_and_clips_replace_relu(models):
    plain_ops, bounded_ops = _ops(models[0]), _ops(models[1])
    assert "Relu" in plain_ops and "Relu6" not in plain_ops
    assert "Relu6" in bounded_ops and "Relu" not in bounded_ops
    assert "Minimum" in bounded_ops and "Minimum" not in plain_ops  # clip_by_value


def test_strided_separable_convs_use_same_padding(models):
    plain, bounded = ([layer.name for layer in m.layers if layer.name.endswith(".pad")]
                      for m in models)
    assert bounded == ["xception_41.entry_flow.conv1_1.pad"]  # conv2d_same keeps its Pad
    assert len(plain) > 1


def test_bounded_equals_plain_within_the_bounds_and_clips_beyond(models):
    plain, bounded = models
    image = np.random.RandomState(0).uniform(-1, 1, (1, 33, 33, 3)).astype(np.float32)
    want = [t.numpy() for t in plain(image, training=False)]
    got = [t.numpy() for t in bounded(image, training=False)]
    for w, g in zip(want, got, strict=True):  # odd size: SAME = explicit padding
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    for layer in bounded.layers:  # large activations: the bounded outputs stay in [0, 6]
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.gamma.assign(np.full(layer.gamma.shape, 4.0, np.float32))
            layer.beta.assign(np.full(layer.beta.shape, 4.0, np.float32))
    features, low_level = (t.numpy() for t in bounded(image * 100, training=False))
    assert features.min() >= 0 and features.max() == pytest.approx(6.0)
    assert np.abs(low_level).max() == pytest.approx(6.0)
