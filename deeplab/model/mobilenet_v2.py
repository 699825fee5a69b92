"""MobileNetV2 backbone as DeepLab builds it (`mobilenet_base` of the original, up to layer_18).

The network is a 3x3 conv (`Conv`, stride 2) and 17 inverted-residual blocks
(`expanded_conv`, `expanded_conv_1` ... `expanded_conv_16`): a 1x1 `expand` conv + BN + ReLU6
(left out when the expansion would not add channels, i.e. in the first block), a 3x3
`depthwise` conv + BN + ReLU6 and a linear 1x1 `project` conv + BN, with a residual sum when
the block keeps both resolution and depth. The final 1x1 conv to 1280 channels (layer_19) is
not built. All convolutions use TF 'SAME' padding (the original never sets
`use_explicit_padding`), so a strided layer on an even size pads only after, unlike
`conv2d_same`. BatchNorm: epsilon 1e-3 (slim's default) and decay 0.997 (mobilenet's
`training_scope`).

Depths follow `make_divisible(depth * depth_multiplier, d, d)` with d = 8 at multiplier 1.0
and d = 1 otherwise (the DeepLab feature extractor's `divisible_by` / `min_depth` defaults);
expansions are `make_divisible(input_depth * 6, 8)` (`* 1` with divisor 1 in the first block)
and are not scaled again. Once the requested output stride is reached, a layer that would
stride instead keeps the current rate and multiplies the rate of the layers after it.
"""

from __future__ import annotations

import dataclasses

import keras

from deeplab.model.backbone_spec import OUTPUT, AtrousSchedule, BackboneSpec
from deeplab.model.layers import NormSpec, conv_norm_act, depthwise_norm_act, keras_name

SCOPE = "MobilenetV2"
ACTIVATION = "relu6"
NORM_EPSILON = 1e-3
NORM_DECAY = 0.997
STEM_DEPTH = 32
STEM_STRIDE = 2


@dataclasses.dataclass(frozen=True)
class Block:
    """One `expanded_conv`: `depth` output channels before the multiplier; the depthwise
    conv strides by `stride`; the expansion is `make_divisible(C_in * expansion,
    expansion_divisor)`."""

    depth: int
    stride: int = 1
    expansion: int = 6
    expansion_divisor: int = 8


BLOCKS = (
    Block(16, expansion=1, expansion_divisor=1),
    Block(24, 2), Block(24),
    Block(32, 2), Block(32), Block(32),
    Block(64, 2), Block(64), Block(64), Block(64),
    Block(96), Block(96), Block(96),
    Block(160, 2), Block(160), Block(160),
    Block(320),
)

# The original's end points feeding the decoder, by stride: layer_4 is the 4th op of the
# spec (one-based: Conv, expanded_conv, expanded_conv_1, expanded_conv_2), i.e. the
# depthwise output (after BN and ReLU6) of `expanded_conv_2`.
DECODER_END_POINTS = {4: "layer_4/depthwise_output"}


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Rounds `value` to the nearest multiple of `divisor` (halves up), at least
    `min_value` (default `divisor`) and never more than 10 % below `value`."""
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def scaled_depth(depth: int, depth_multiplier: float) -> int:
    """Output channels of a layer with nominal `depth` (the original's `depth_multiplier`
    op with DeepLab's defaults: divisor and minimum 8 at multiplier 1.0, else 1)."""
    divisor = 8 if depth_multiplier == 1.0 else 1
    return make_divisible(depth * depth_multiplier, divisor, divisor)


def block_scope(index: int) -> str:
    """TF1 scope of block `index` (0-based): expanded_conv, expanded_conv_1, ..."""
    return f"{SCOPE}/expanded_conv" + (f"_{index}" if index else "")


def _expanded_conv(x, block: Block, depth: int, scope: str, norm: NormSpec, stride: int,
                   rate: int):
    """One inverted residual: [B, H, W, C] -> (output [B, H/stride, W/stride, depth],
    depthwise output [B, H/stride, W/stride, C_expanded])."""
    inputs = x
    in_depth = x.shape[-1]
    inner = make_divisible(in_depth * block.expansion, block.expansion_divisor)
    if inner > in_depth:
        x = conv_norm_act(x, inner, 1, f"{scope}/expand", norm, activation=ACTIVATION)
    x = depthwise_norm_act(x, 3, f"{scope}/depthwise", norm, stride=stride, rate=rate,
                           activation=ACTIVATION, explicit_padding=False)
    depthwise_output = x
    x = conv_norm_act(x, depth, 1, f"{scope}/project", norm, activation=None)
    if stride == 1 and depth == in_depth:
        x = keras.layers.Add(name=keras_name(f"{scope}/add"))([x, inputs])
    return x, depthwise_output


def build(images, options, norm: NormSpec) -> dict:
    """MobileNetV2 feature extractor (see `backbone_spec` for the returned mapping).

    images: preprocessed [B, H, W, 3]. Returns {4: [B, ceil(H/4), ceil(W/4), 144 at
    multiplier 1.0 (72 at 0.5)], OUTPUT: [B, ceil(H/OS), ceil(W/OS), 320 (160)]}; the stride-4
    map is the original's `layer_4/depthwise_output`.
    """
    multiplier = options.depth_multiplier
    if multiplier <= 0:
        raise ValueError(f"depth_multiplier={multiplier} must be positive")
    schedule = AtrousSchedule(options.output_stride)
    stride, rate = schedule.step(STEM_STRIDE)
    x = conv_norm_act(images, scaled_depth(STEM_DEPTH, multiplier), 3, f"{SCOPE}/Conv", norm,
                      stride=stride, rate=rate, activation=ACTIVATION, explicit_padding=False)
    end_points = {"layer_1": x}
    for i, block in enumerate(BLOCKS):
        stride, rate = schedule.step(block.stride)
        x, depthwise = _expanded_conv(x, block, scaled_depth(block.depth, multiplier),
                                      block_scope(i), norm, stride, rate)
        end_points[f"layer_{i + 2}"] = x
        end_points[f"layer_{i + 2}/depthwise_output"] = depthwise
    schedule.check(options.model_variant)
    return {**{s: end_points[name] for s, name in DECODER_END_POINTS.items()}, OUTPUT: x}


SPEC = BackboneSpec("mobilenet_v2", ("mobilenet_v2",), build, NORM_EPSILON, NORM_DECAY)
