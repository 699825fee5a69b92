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

from deeplab.model.backbone_spec import BackboneSpec
from deeplab.model.inverted_residual import (
    InvertedResidual,
    MobileNetDef,
    make_divisible,
    mobilenet_base,
)
from deeplab.model.layers import NormSpec

SCOPE = "MobilenetV2"
ACTIVATION = "relu6"
NORM_EPSILON = 1e-3
NORM_DECAY = 0.997
STEM_DEPTH = 32


def _block(depth: int, stride: int = 1, expansion: int = 6, expansion_divisor: int = 8):
    """One `expanded_conv`: 3x3 depthwise, ReLU6, expansion make_divisible(C_in * expansion,
    expansion_divisor)."""
    return InvertedResidual(depth, expansion, 3, stride, ACTIVATION,
                            expansion_divisor=expansion_divisor)


BLOCKS = (
    _block(16, expansion=1, expansion_divisor=1),
    _block(24, 2), _block(24),
    _block(32, 2), _block(32), _block(32),
    _block(64, 2), _block(64), _block(64), _block(64),
    _block(96), _block(96), _block(96),
    _block(160, 2), _block(160), _block(160),
    _block(320),
)

# The original's end points feeding the decoder, by stride: layer_4 is the 4th op of the
# spec (one-based: Conv, expanded_conv, expanded_conv_1, expanded_conv_2), i.e. the
# depthwise output (after BN and ReLU6) of `expanded_conv_2`.
DECODER_END_POINTS = {4: "layer_4/depthwise_output"}

NETWORK = MobileNetDef(SCOPE, STEM_DEPTH, ACTIVATION, BLOCKS,
                       decoder_end_points=DECODER_END_POINTS)


def scaled_depth(depth: int, depth_multiplier: float, divisible_by: int | None = None) -> int:
    """Output channels of a layer with nominal `depth` (the original's `depth_multiplier`
    op with DeepLab's defaults: minimum 8 at multiplier 1.0, else 1; divisor
    `divisible_by`, by default that minimum)."""
    minimum = 8 if depth_multiplier == 1.0 else 1
    return make_divisible(depth * depth_multiplier, divisible_by or minimum, minimum)


def block_scope(index: int) -> str:
    """TF1 scope of block `index` (0-based): expanded_conv, expanded_conv_1, ..."""
    return NETWORK.block_scope(index)


def build(images, options, norm: NormSpec) -> dict:
    """MobileNetV2 feature extractor (see `backbone_spec` for the returned mapping).

    images: preprocessed [B, H, W, 3]. Returns {4: [B, ceil(H/4), ceil(W/4), 144 at
    multiplier 1.0 (72 at 0.5)], OUTPUT: [B, ceil(H/OS), ceil(W/OS), 320 (160)]}; the stride-4
    map is the original's `layer_4/depthwise_output`.
    """
    multiplier = options.depth_multiplier
    if multiplier <= 0:
        raise ValueError(f"depth_multiplier={multiplier} must be positive")
    divisible_by = options.divisible_by
    return mobilenet_base(images, NETWORK, options.output_stride, norm,
                          lambda depth: scaled_depth(depth, multiplier, divisible_by),
                          options.model_variant)


SPEC = BackboneSpec("mobilenet_v2", ("mobilenet_v2",), build, NORM_EPSILON, NORM_DECAY,
                    options=("depth_multiplier", "divisible_by"))
