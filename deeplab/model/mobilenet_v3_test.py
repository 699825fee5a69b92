"""MobileNetV3 seg backbones: TF1 names and shapes, checkpoint import, structure, strides.

Expected figures come from the reference fixtures (vars.txt, README "New variants") and the
original's conv_defs, not from the model.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.checkpoints.io import restore_model, variable_map
from deeplab.model import mobilenet_v3
from deeplab.model.backbone_spec import OUTPUT
from deeplab.model.layers import NormSpec
from deeplab.model.options import ModelOptions

LARGE, SMALL = "mobilenet_v3_large_seg", "mobilenet_v3_small_seg"
# README "Parameter totals", per scope (trainable and moving statistics).
BACKBONE_PARAMETERS = {LARGE: 1_396_960, SMALL: 398_944}
# README "New variants": which blocks have squeeze-excite, residual sums, stride 2, and
# how many activations and BatchNorms of each kind the graph holds.
SQUEEZE_EXCITE = {LARGE: {3, 4, 5, 10, 11, 12, 13, 14}, SMALL: {0, 3, 4, 5, 6, 7, 8, 9, 10}}
RESIDUAL = {LARGE: {0, 2, 4, 5, 7, 8, 9, 11, 13, 14}, SMALL: {2, 4, 5, 7, 9, 10}}
STRIDED = {LARGE: [1, 3, 6, 12], SMALL: [0, 1, 3, 8]}  # plus the stem `Conv`
ACTIVATIONS = {LARGE: {"hard_swish": 20, "relu": 11 + 8, "hard_sigmoid": 8},
               SMALL: {"hard_swish": 18, "relu": 5 + 9, "hard_sigmoid": 9}}
BATCH_NORMS = {LARGE: 46, SMALL: 34}
NUM_BLOCKS = {LARGE: 15, SMALL: 11}
# Decoder end points {stride: (scope of the activation that is the end point, channels)}.
END_POINTS = {
    LARGE: {4: ("expanded_conv_2/depthwise/relu", 72), 8: ("expanded_conv_5/depthwise/relu", 120),
            16: ("expanded_conv_11/depthwise/hard_swish", 672)},
    SMALL: {4: ("expanded_conv/depthwise/relu", 16), 8: ("expanded_conv_2/depthwise/relu", 88),
            16: ("expanded_conv_7/depthwise/hard_swish", 144)},
}
FEATURE_DEPTH = {LARGE: 480, SMALL: 288}


def reference_variables(folder, scope: str) -> dict[str, tuple[int, ...]]:
    """{name: shape} of the variables under `scope` in a fixture folder's vars.txt."""
    shapes = {}
    for line in (folder / "vars.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        name, shape = line.split("\t")[:2]
        if name.startswith(f"{scope}/"):
            shapes[name.removesuffix(":0")] = tuple(int(d) for d in shape.split("x"))
    return shapes


def backbone(spec, options: ModelOptions, size: int | None = None) -> keras.Model:
    """The backbone of `spec` alone on a [B, size, size, 3] input, returning its mapping."""
    images = keras.Input((size, size, 3))
    norm = NormSpec(epsilon=spec.norm_epsilon, decay=spec.norm_decay)
    return keras.Model(images, spec.build(images, options, norm))


def check_reference_import(model: keras.Model, folder, scope: str, parameters: int,
                           checkpoint: str) -> None:
    """Names and shapes equal vars.txt's `scope` part, the parameter count equals the
    README's, and restoring the reference checkpoint fills every variable with its value."""
    names = {name: tuple(var.shape) for name, var in variable_map(model).items()}
    assert names == reference_variables(folder, scope)
    assert model.count_params() == parameters
    report = restore_model(model, checkpoint, allow_unused=True)
    assert sorted(report.loaded) == sorted(names)
    assert not report.missing and not report.mismatched
    assert {name.split("/")[0] for name, _ in report.unused} <= {
        "image_pooling", "aspp0", "concat_projection", "decoder", "logits"}
    reader = tf.train.load_checkpoint(checkpoint)
    for name, var in variable_map(model).items():
        np.testing.assert_array_equal(var.numpy(), reader.get_tensor(name), err_msg=name)


def _model(variant, output_stride=32, depth_multiplier=1.0) -> keras.Model:
    """The backbone alone, built once per setting (building is the slow part)."""
    return _cached_model(variant, output_stride, depth_multiplier)


@functools.cache
def _cached_model(variant, output_stride, depth_multiplier):
    options = ModelOptions(model_variant=variant, output_stride=output_stride,
                           depth_multiplier=depth_multiplier)
    return backbone(mobilenet_v3.SPEC, options)


def _layer_names(model):
    return {layer.name for layer in model.layers}


def _scope(i):
    return mobilenet_v3.LARGE.block_scope(i).replace("/", ".")


@pytest.mark.parametrize("variant", [LARGE, SMALL])
def test_reference_checkpoint_imports(variant, reference_fixtures, reference_checkpoint):
    model = _model(variant)
    check_reference_import(model, reference_fixtures / variant, "MobilenetV3",
                           BACKBONE_PARAMETERS[variant], reference_checkpoint(variant))


@pytest.mark.parametrize("variant", [LARGE, SMALL])
def test_structure_matches_reference_graph(variant):
    model = _model(variant)
    names = _layer_names(model)
    blocks = range(NUM_BLOCKS[variant])
    assert {i for i in blocks if f"{_scope(i)}.squeeze_excite.mul" in names} \
        == SQUEEZE_EXCITE[variant]
    assert {i for i in blocks if f"{_scope(i)}.add" in names} == RESIDUAL[variant]
    assert [i for i in blocks
            if model.get_layer(f"{_scope(i)}.depthwise").strides == (2, 2)] == STRIDED[variant]
    assert model.get_layer("MobilenetV3.Conv").strides == (2, 2)
    kinds = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Activation):
            kind = layer.name.rsplit(".", 1)[1]
            kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds == ACTIVATIONS[variant]
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == BATCH_NORMS[variant]
    assert {(n.epsilon, n.momentum) for n in norms} == {(1e-3, 0.997)}
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in model.layers)


@pytest.mark.parametrize("variant", [LARGE, SMALL])
def test_decoder_end_points_are_depthwise_outputs_before_squeeze_excite(variant):
    model = _model(variant)
    for stride, (scope, depth) in END_POINTS[variant].items():
        tensor = model.output[stride]
        assert tensor._keras_history.operation.name == f"MobilenetV3.{scope}".replace("/", ".")
        assert tensor.shape[-1] == depth


@pytest.mark.parametrize("variant", [LARGE, SMALL])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_shapes_per_stride_with_unknown_size(variant, output_stride):
    model = _model(variant, output_stride)
    height, width = 70, 45
    out = model(np.zeros((1, height, width, 3), np.float32))
    expected_strides = {s for s in (4, 8, 16) if s <= output_stride}
    assert set(out) == expected_strides | {OUTPUT}
    for stride in expected_strides:
        depth = END_POINTS[variant][stride][1]
        assert out[stride].shape == (1, -(-height // stride), -(-width // stride), depth)
    side = (-(-height // output_stride), -(-width // output_stride))
    assert out[OUTPUT].shape == (1, *side, FEATURE_DEPTH[variant])


@pytest.mark.parametrize("output_stride,rates", [
    # Large: the 5th stride-2 layer is expanded_conv_12, the 4th expanded_conv_6.
    (32, [1] * 15),
    (16, [1] * 13 + [2] * 2),
    (8, [1] * 7 + [2] * 6 + [4] * 2),
])
def test_atrous_rates_large(output_stride, rates):
    model = _model(LARGE, output_stride)
    assert [model.get_layer(f"{_scope(i)}.depthwise").dilation_rate[0]
            for i in range(15)] == rates


def test_depth_multiplier_divides_by_8():
    model = _model(SMALL, depth_multiplier=0.5)
    # make_divisible(n * 0.5, 8): 16 -> 8, 24 -> 16 (12 rounds up), 40 -> 24, 48 -> 24,
    # Conv_1 288 -> 144; expansions of the actual input: 8 * 72/16 = 36 -> 40.
    assert model.get_layer("MobilenetV3.Conv").filters == 8
    assert [model.get_layer(f"{_scope(i)}.project").filters for i in range(11)] \
        == [8, 16, 16, 24, 24, 24, 24, 24, 24, 24, 24]
    assert model.get_layer(f"{_scope(1)}.expand").filters == 40
    assert model.get_layer("MobilenetV3.Conv_1").filters == 144
