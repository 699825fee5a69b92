"""EdgeTPU-MobileNet backbone as DeepLab builds it (`mobilenet_edgetpu`, EdgeTPU-DeepLab).

The original's `mobilenet_v3.V3_EDGETPU` under the scope `MobilenetEdgeTPU`, up to layer_24
(`Conv_1`, a 1x1 conv to 1280 + BN + ReLU). Every activation is ReLU; there is no
squeeze-excite. `expanded_conv` ... `expanded_conv_8` are *fused* blocks: the expand is a
full 3x3 conv carrying the stride (+ BN + ReLU), no depthwise, then the linear 1x1
projection. The first one has expansion 1, so it has no expand at all (only the projection
to 16). `expanded_conv_9` ... `_21` are regular inverted residuals (3x3 depthwise, 5x5 in
`_17` ... `_20`); `expanded_conv_13` has no residual sum although it would fit.

Five stride-2 layers (`Conv`, `expanded_conv_1`, `_5`, `_9`, `_17`); at output stride 16
`expanded_conv_17` runs at stride 1 and the depthwise convs after it are dilated by 2
(`AtrousSchedule`). Padding is TF 'SAME'. Depths are make_divisible(depth *
depth_multiplier, 8) at any multiplier (EdgeTPU-DeepLab-slim uses 0.75: `Conv` 24, the first
projection 16, `Conv_1` 960); expansions make_divisible(C_in * factor, 8) of the actual input.
BatchNorm epsilon 1e-3 and decay 0.997. The original defines no decoder end points for it.
"""

from __future__ import annotations

from deeplab.model.backbone_spec import BackboneSpec
from deeplab.model.inverted_residual import InvertedResidual, MobileNetDef, mobilenet_base
from deeplab.model.layers import NormSpec
from deeplab.model.mobilenet_v3 import NORM_DECAY, NORM_EPSILON, scaled_depth

SCOPE = "MobilenetEdgeTPU"


def _fused(depth, expansion, stride=1):
    return InvertedResidual(depth, expansion, 3, stride, fused=True)


def _regular(depth, expansion, kernel=3, stride=1, residual=True):
    return InvertedResidual(depth, expansion, kernel, stride, residual=residual)


NETWORK = MobileNetDef(
    SCOPE, 32, "relu",
    blocks=(
        _fused(16, 1),
        _fused(32, 8, 2), _fused(32, 4), _fused(32, 4), _fused(32, 4),
        _fused(48, 8, 2), _fused(48, 4), _fused(48, 4), _fused(48, 4),
        _regular(96, 8, stride=2), _regular(96, 4), _regular(96, 4), _regular(96, 4),
        _regular(96, 8, residual=False), _regular(96, 4), _regular(96, 4), _regular(96, 4),
        _regular(160, 8, 5, 2), _regular(160, 4, 5), _regular(160, 4, 5), _regular(160, 4, 5),
        _regular(192, 8),
    ),
    final_depth=1280, final_activation="relu")


def build(images, options, norm: NormSpec) -> dict:
    """EdgeTPU-MobileNet feature extractor (see `backbone_spec` for the returned mapping).

    images: preprocessed [B, H, W, 3]. Returns {OUTPUT: [B, ceil(H/OS), ceil(W/OS), 1280
    (960 at multiplier 0.75)]}.
    """
    multiplier = options.depth_multiplier
    if multiplier <= 0:
        raise ValueError(f"depth_multiplier={multiplier} must be positive")
    return mobilenet_base(images, NETWORK, options.output_stride, norm,
                          lambda depth: scaled_depth(depth, multiplier), options.model_variant)


SPEC = BackboneSpec("mobilenet_edgetpu", ("mobilenet_edgetpu",), build, NORM_EPSILON,
                    NORM_DECAY, options=("depth_multiplier",))
