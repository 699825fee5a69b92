"""The DeepLabv3+ decoder: refines the head's output with a low-level backbone feature.

The low-level map is the backbone's end point at `decoder_output_stride` (stride 4 for
Xception / ResNet / MobileNetV2, 8 for MobileNetV3). Two merges, as the original:
- concat (default): 1x1 projection to 48 channels + BN + ReLU, the head output upsampled
  (align_corners) to its size, concatenated, two 3x3 (separable) convs `decoder_conv{0,1}`;
- sum (`decoder_use_sum_merge`): the upsampled head output through `decoder_conv0` plus the
  low-level projection (`decoder_filters` channels); with `decoder_output_is_logits` both are
  1x1 convs with biases, no BN or activation, and the sum is the logits.
"""

from __future__ import annotations

import keras

from deeplab.model.activations import relu_or_relu6
from deeplab.model.layers import (
    HEAD_SEPARABLE_STDDEVS,
    NormSpec,
    ResizeLike,
    conv_norm_act,
    keras_name,
    separable_conv_norm_act,
)

SCOPE = "decoder"
# The ModelOptions fields only the decoder reads (its option group)
OPTIONS = ("decoder_output_stride", "decoder_use_separable_conv", "decoder_use_sum_merge",
           "decoder_output_is_logits", "decoder_filters")
PROJECTION_FILTERS = 48


def low_level_feature(features: dict, options):
    """The backbone end point the decoder reads: features[decoder_output_stride]."""
    stride = options.decoder_output_stride
    if stride not in features:
        strides = sorted(k for k in features if isinstance(k, int))
        raise ValueError(f"model_variant={options.model_variant} has decoder end points at "
                         f"stride(s) {strides or 'none'}; decoder_output_stride={stride} is "
                         "not one of them")
    return features[stride]


def _conv(x, filters, kernel, scope, norm, separable, logits, act="relu"):
    if logits:  # 1x1, bias, no BN or activation
        return conv_norm_act(x, filters, 1, scope, None, activation=None, dtype="float32")
    if separable:
        return separable_conv_norm_act(x, filters, kernel, scope, norm,
                                       depthwise_activation=act, pointwise_activation=act,
                                       init_stddevs=HEAD_SEPARABLE_STDDEVS)
    return conv_norm_act(x, filters, kernel, scope, norm, activation=act)


def build(head_output, low_level, options, norm: NormSpec):
    """[B, h, w, C] and low-level [B, H, W, C'] -> [B, H, W, decoder_filters]."""
    sum_merge, logits = options.decoder_use_sum_merge, options.decoder_output_is_logits
    filters = options.decoder_filters if sum_merge else PROJECTION_FILTERS
    act = relu_or_relu6(options.use_bounded_activation)
    projected = _conv(low_level, filters, 1, f"{SCOPE}/feature_projection0", norm, False,
                      logits, act)
    upsampled = ResizeLike(name=keras_name(f"{SCOPE}/resize"))(head_output, projected)
    if sum_merge:
        separable = options.decoder_use_separable_conv and not logits
        scope = f"{SCOPE}/decoder_split_sep_conv0" if separable else f"{SCOPE}/decoder_conv0"
        merged = _conv(upsampled, options.decoder_filters, 3, scope, norm, separable, logits,
                       act)
        return keras.layers.Add(name=keras_name(f"{SCOPE}/sum"),
                                dtype="float32" if logits else None)([merged, projected])
    x = keras.layers.Concatenate(name=keras_name(f"{SCOPE}/concat"))([upsampled, projected])
    for i in range(2):
        x = _conv(x, options.decoder_filters, 3, f"{SCOPE}/decoder_conv{i}", norm,
                  options.decoder_use_separable_conv, False, act)
    return x
