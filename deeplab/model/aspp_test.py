"""ASPP options: fixed-kernel image pooling, the squeeze-excite gate, no concat projection."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.checkpoints.io import variable_map
from deeplab.model import aspp
from deeplab.model.activations import hard_sigmoid
from deeplab.model.layers import NormSpec
from deeplab.model.options import ModelOptions


@pytest.mark.parametrize("traced", [False, True])
def test_fixed_pooling_uses_its_kernel_and_strides_or_averages_a_smaller_map(traced):
    pool = aspp.FixedImagePooling((25, 25), (4, 5))
    run = tf.function(pool, input_signature=[tf.TensorSpec([1, None, None, 2])]) if traced \
        else pool
    big = np.random.RandomState(0).rand(1, 33, 33, 2).astype(np.float32)
    out = run(big).numpy()
    assert out.shape == (1, 3, 2, 2)  # rows (33-25)//4+1, cols (33-25)//5+1
    np.testing.assert_allclose(out[0, 2, 1], big[0, 8:33, 5:30].mean((0, 1)), rtol=1e-5)
    small = big[:, :17, :17]
    np.testing.assert_allclose(run(small).numpy(), small.mean((1, 2), keepdims=True),
                               rtol=1e-5)


def _head(**fields):
    options = ModelOptions(model_variant="mobilenet_v2", num_classes=3, aspp_convs_filters=4,
                           **fields)
    features = keras.Input((None, None, 6))
    return keras.Model(features, aspp.build(features, options, NormSpec())), options


def test_squeeze_excite_gate_multiplies_the_1x1_branch():
    model, _ = _head(aspp_with_squeeze_and_excitation=True, image_se_uses_qsigmoid=True,
                     aspp_with_concat_projection=False)
    names = variable_map(model)
    assert "image_pooling/biases" in names and "image_pooling/BatchNorm/gamma" not in names
    assert not any(n.startswith("concat_projection") for n in names)
    x = np.random.RandomState(1).randn(1, 5, 7, 6).astype(np.float32)
    gate_in = x.mean((1, 2)) @ names["image_pooling/weights"].numpy()[0, 0]
    gate = hard_sigmoid(gate_in + names["image_pooling/biases"].numpy()).numpy()
    branch = keras.Model(model.input, model.get_layer("aspp0.relu").output)(x).numpy()
    np.testing.assert_allclose(model(x).numpy(), branch * gate[:, None, None, :], rtol=1e-5,
                               atol=1e-6)


def test_default_head_concatenates_and_projects():
    model, options = _head(atrous_rates=(1, 2))
    names = variable_map(model)
    for scope in ("image_pooling/BatchNorm", "aspp0", "aspp1_depthwise", "aspp2_pointwise",
                  "concat_projection"):
        assert any(n.startswith(scope) for n in names), scope
    assert names["concat_projection/weights"].shape == (1, 1, 4 * options.aspp_convs_filters, 4)
    assert model(np.zeros((2, 9, 9, 6), np.float32)).shape == (2, 9, 9, 4)


def test_gate_constant_is_the_originals_not_one_sixth():
    assert float(hard_sigmoid(tf.constant(0.0))) == pytest.approx(3 * 0.16667, rel=1e-7)


def test_head_batch_norms_compute_with_the_fused_kernels_epsilon():
    """TF1's fused BatchNorm raises epsilon 1e-5 to 1.001e-5; the original computes with it."""
    model, _ = _head(atrous_rates=(1,))
    epsilons = {layer.name: layer.epsilon for layer in model.layers
                if isinstance(layer, keras.layers.BatchNormalization)}
    assert epsilons and set(epsilons.values()) == {1.001e-5}, epsilons
