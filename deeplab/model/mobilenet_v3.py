"""MobileNetV3 backbones as DeepLab builds them: `mobilenet_v3_large_seg` / `_small_seg`.

These are the original's `mobilenet_v3.V3_LARGE` / `V3_SMALL` with the segmentation change of
`feature_extractor.mobilenet_v3_{large,small}_seg`: the last stage is halved (large: the
last three blocks project to 80 with expansions 336, 480, 480 and `Conv_1` has 480 channels;
small: 48 with 144, 288, 288 and `Conv_1` 288), and the network ends at `Conv_1` (layer_17
large, layer_13 small). Variables live under `MobilenetV3`.

Each block is an inverted residual (`inverted_residual`): ReLU in the early blocks,
hard-swish (x * relu6(x + 3) / 6) from large `expanded_conv_6` / small `expanded_conv_3` on,
and in the stem and `Conv_1`; squeeze-excite (hard-sigmoid gate 0.16667) on the depthwise
output of the blocks the original marks. Five stride-2 layers make output stride 32; a
smaller output stride dilates the later depthwise convs (`AtrousSchedule`). Padding is TF
'SAME'. BatchNorm epsilon 1e-3 (slim's default) and decay 0.997 (DeepLab's mobilenet arg
scope). Depths are make_divisible(depth * depth_multiplier, 8) at any multiplier (the
original's `mobilenet_base` defaults); expansions make_divisible(C_in * factor, 8).

Decoder end points (the original's `networks_to_feature_maps`), all depthwise outputs after
BN and activation, before squeeze-excite: large {4: layer_4 (`expanded_conv_2`, 72 ch),
8: layer_7 (`expanded_conv_5`, 120), 16: layer_13 (`expanded_conv_11`, 672)}; small
{4: layer_2 (`expanded_conv`, 16), 8: layer_4 (`expanded_conv_2`, 88), 16: layer_9
(`expanded_conv_7`, 144)}.
"""

from __future__ import annotations

from deeplab.model.activations import hard_swish
from deeplab.model.backbone_spec import BackboneSpec
from deeplab.model.inverted_residual import (
    InvertedResidual,
    MobileNetDef,
    make_divisible,
    mobilenet_base,
)
from deeplab.model.layers import NormSpec

SCOPE = "MobilenetV3"
NORM_EPSILON = 1e-3
NORM_DECAY = 0.997
DEPTH_DIVISOR = 8


def _relu(depth, expansion, kernel=3, stride=1, se=False):
    return InvertedResidual(depth, expansion, kernel, stride, "relu", squeeze_excite=se)


def _hswish(depth, expansion, kernel=3, stride=1, se=False):
    return InvertedResidual(depth, expansion, kernel, stride, hard_swish, squeeze_excite=se)


LARGE = MobileNetDef(
    SCOPE, 16, hard_swish,
    blocks=(
        _relu(16, 1),
        _relu(24, 4, stride=2), _relu(24, 3),
        _relu(40, 3, 5, 2, se=True), _relu(40, 3, 5, se=True), _relu(40, 3, 5, se=True),
        _hswish(80, 6, stride=2), _hswish(80, 2.5), _hswish(80, 184 / 80), _hswish(80, 184 / 80),
        _hswish(112, 6, se=True), _hswish(112, 6, se=True),
        # Halved for segmentation: 160 -> 80; expansions 336 / 112 and 480 / 80.
        _hswish(80, 3, 5, 2, se=True), _hswish(80, 6, 5, se=True), _hswish(80, 6, 5, se=True),
    ),
    final_depth=480, final_activation=hard_swish,
    decoder_end_points={4: "layer_4/depthwise_output", 8: "layer_7/depthwise_output",
                        16: "layer_13/depthwise_output"})

SMALL = MobileNetDef(
    SCOPE, 16, hard_swish,
    blocks=(
        _relu(16, 1, stride=2, se=True),
        _relu(24, 72 / 16, stride=2), _relu(24, 88 / 24),
        _hswish(40, 4, 5, 2, se=True), _hswish(40, 6, 5, se=True), _hswish(40, 6, 5, se=True),
        _hswish(48, 3, 5, se=True), _hswish(48, 3, 5, se=True),
        # Halved for segmentation: 96 -> 48; expansions 144 / 48 and 288 / 48.
        _hswish(48, 3, 5, 2, se=True), _hswish(48, 6, 5, se=True), _hswish(48, 6, 5, se=True),
    ),
    final_depth=288, final_activation=hard_swish,
    decoder_end_points={4: "layer_2/depthwise_output", 8: "layer_4/depthwise_output",
                        16: "layer_9/depthwise_output"})

NETWORKS = {"mobilenet_v3_large_seg": LARGE, "mobilenet_v3_small_seg": SMALL}


def scaled_depth(depth: int, depth_multiplier: float) -> int:
    """Channels of a layer with nominal `depth`: make_divisible(depth * multiplier, 8)."""
    return make_divisible(depth * depth_multiplier, DEPTH_DIVISOR)


def build(images, options, norm: NormSpec) -> dict:
    """MobileNetV3 seg feature extractor (see `backbone_spec` for the returned mapping).

    images: preprocessed [B, H, W, 3]. Returns, at multiplier 1.0, large {4: [B, H/4, W/4,
    72], 8: [.., H/8, W/8, 120], 16: [.., H/16, W/16, 672], OUTPUT: [B, H/OS, W/OS, 480]} and
    small {4: 16 ch, 8: 88, 16: 144, OUTPUT: 288}; sizes round up; the stride-16 end point
    only where output_stride >= 16.
    """
    multiplier = options.depth_multiplier
    if multiplier <= 0:
        raise ValueError(f"depth_multiplier={multiplier} must be positive")
    return mobilenet_base(images, NETWORKS[options.model_variant], options.output_stride, norm,
                          lambda depth: scaled_depth(depth, multiplier), options.model_variant)


SPEC = BackboneSpec("mobilenet_v3", tuple(NETWORKS), build, NORM_EPSILON, NORM_DECAY,
                    options=("depth_multiplier",))
