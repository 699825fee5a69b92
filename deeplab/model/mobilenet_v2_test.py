"""MobileNetV2 backbone: shapes, atrous rates, depths, TF1 names, end point, padding.

Expected numbers are derived by hand from the original's rules (see the module docstring of
`deeplab.model.mobilenet_v2`), not read off the model.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.checkpoints.io import variable_map
from deeplab.model import mobilenet_v2
from deeplab.model.backbone_spec import OUTPUT
from deeplab.model.deeplab import backbone_norm, build_model
from deeplab.model.options import ModelOptions

# Depthwise dilation of expanded_conv .. expanded_conv_16 per output stride: once the
# stride is reached, the block that would stride keeps the current rate, later ones double.
RATES = {
    8: [1] * 7 + [2] * 7 + [4] * 3,
    16: [1] * 14 + [2] * 3,
    32: [1] * 17,
}
# Blocks with a residual sum: stride 1 and depth unchanged (the converted strided blocks
# 6 and 13 change depth, so they never add, at any output stride).
RESIDUAL_BLOCKS = {2, 4, 5, 7, 8, 9, 11, 12, 14, 15}
# depth_multiplier 0.5: divisor and minimum 1, so depth * 0.5 rounded (halves up); the
# expansion is make_divisible(6 * C_in, 8) of the already scaled input (no expand in block 0).
STEM_05 = 16
PROJECT_05 = [8, 12, 12, 16, 16, 16, 32, 32, 32, 32, 48, 48, 48, 80, 80, 80, 160]
EXPAND_05 = [None, 48, 72, 72, 96, 96, 96, 192, 192, 192, 192, 288, 288, 288, 480, 480, 480]


def _backbone(options: ModelOptions, size: int | None = None) -> keras.Model:
    images = keras.Input((size, size, 3))
    out = mobilenet_v2.build(images, options, backbone_norm(options))
    return keras.Model(images, [out[OUTPUT], out[4]])


def _layer(model: keras.Model, scope: str) -> keras.layers.Layer:
    return model.get_layer(scope.replace("/", "."))


def _random_images(*shape):
    return np.random.RandomState(0).uniform(-1, 1, (1, *shape, 3)).astype(np.float32)


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_output_stride_shapes_rates_and_residuals(output_stride):
    model = _backbone(ModelOptions(output_stride=output_stride))
    features, low_level = model(_random_images(65, 65))
    side = -(-65 // output_stride)
    assert features.shape == (1, side, side, 320)
    assert low_level.shape == (1, 17, 17, 144)
    rates = [_layer(model, f"{mobilenet_v2.block_scope(i)}/depthwise").dilation_rate[0]
             for i in range(17)]
    assert rates == RATES[output_stride]
    names = {layer.name for layer in model.layers}
    adds = {i for i in range(17)
            if f"{mobilenet_v2.block_scope(i)}/add".replace("/", ".") in names}
    assert adds == RESIDUAL_BLOCKS


def test_make_divisible_rule():
    assert mobilenet_v2.make_divisible(12, 8) == 16  # halves round up
    assert mobilenet_v2.make_divisible(4, 8) == 8  # at least the divisor
    assert mobilenet_v2.make_divisible(10, 8) == 16  # 8 would be > 10 % below 10
    assert mobilenet_v2.make_divisible(12.5, 1, 1) == 13
    assert mobilenet_v2.scaled_depth(24, 0.5) == 12
    assert mobilenet_v2.scaled_depth(320, 1.0) == 320


def test_depth_multiplier_half_channels():
    model = _backbone(ModelOptions(depth_multiplier=0.5))
    assert _layer(model, "MobilenetV2/Conv").filters == STEM_05
    project = [_layer(model, f"{mobilenet_v2.block_scope(i)}/project").filters
               for i in range(17)]
    layers = {layer.name: layer for layer in model.layers}
    expand = [getattr(layers.get(f"{mobilenet_v2.block_scope(i)}/expand".replace("/", ".")),
                      "filters", None) for i in range(17)]
    assert project == PROJECT_05
    assert expand == EXPAND_05
    features, low_level = model(_random_images(33, 33))
    assert features.shape == (1, 3, 3, 160)
    assert low_level.shape == (1, 9, 9, 72)


def _reference_variables(folder) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in (folder / "vars.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        name, shape = line.split("\t")[:2]
        shapes[name.removesuffix(":0")] = tuple(int(d) for d in shape.split("x"))
    return shapes


def test_variable_names_match_reference(reference_fixtures):
    expected = _reference_variables(reference_fixtures / "mobilenet_v2")
    model = build_model(ModelOptions(model_variant="mobilenet_v2"))
    names = {name: tuple(var.shape) for name, var in variable_map(model).items()}
    assert len(expected) == 272
    assert names == expected


def test_batch_norm_settings():
    model = _backbone(ModelOptions())
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 51  # stem, block 0 (no expand) 2, blocks 1-16 three each
    assert {(n.epsilon, n.momentum) for n in norms} == {(1e-3, 0.997)}


def test_decoder_end_point_at_stride_4():
    model = _backbone(ModelOptions(output_stride=8))
    low_level = model.outputs[1]
    assert low_level._keras_history.operation.name == "MobilenetV2.expanded_conv_2.depthwise.relu6"
    deeplab = build_model(ModelOptions(model_variant="mobilenet_v2", decoder_output_stride=4))
    assert deeplab(_random_images(33, 33)).shape == (1, 9, 9, 21)
    assert "decoder.feature_projection0" in {layer.name for layer in deeplab.layers}


@pytest.mark.parametrize("height,width", [(64, 48), (33, 47)])
def test_unknown_input_size(height, width):
    model = _backbone(ModelOptions(output_stride=16))
    features, low_level = model(_random_images(height, width))
    assert features.shape == (1, -(-height // 16), -(-width // 16), 320)
    assert low_level.shape == (1, -(-height // 4), -(-width // 4), 144)


def test_strided_layers_use_tf_same_padding():
    """On an even size TF 'SAME' pads only after (conv2d_same would pad 1 on each side)."""
    model = _backbone(ModelOptions())
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in model.layers)
    conv = _layer(model, "MobilenetV2/Conv")
    norm = _layer(model, "MobilenetV2/Conv/BatchNorm")
    rs = np.random.RandomState(1)
    gamma, beta, mean = (rs.normal(0, 1, 32).astype(np.float32) for _ in range(3))
    var = rs.uniform(0.5, 1.5, 32).astype(np.float32)
    norm.set_weights([gamma, beta, mean, var])
    stem = keras.Model(model.inputs[0], _layer(model, "MobilenetV2/Conv/relu6").output)
    images = _random_images(8, 8)
    expected = tf.nn.conv2d(images, conv.kernel, 2, "SAME")
    expected = tf.clip_by_value((expected - mean) / np.sqrt(var + 1e-3) * gamma + beta, 0, 6)
    np.testing.assert_allclose(stem(images), expected, atol=1e-5)
