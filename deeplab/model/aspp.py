"""Atrous spatial pyramid pooling (ASPP), with the original's head options.

Branches in the original's order: image pooling (`image_pooling`), a 1x1 conv (`aspp0`),
one 3x3 atrous conv per rate (`aspp1`, ...). By default they are concatenated and projected
by a 1x1 conv (`concat_projection`) followed by dropout 0.1. With squeeze-and-excitation
(MobileNetV3's head) the image-pooling branch is a gate instead: 1x1 conv with a bias and
no BN, then sigmoid or `hard_sigmoid`, multiplied into the (projected) other branches.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.model.activations import hard_sigmoid, relu_or_relu6
from deeplab.model.layers import (
    HEAD_SEPARABLE_STDDEVS,
    Dropout,
    GlobalMeanPool,
    NormSpec,
    ResizeLike,
    conv_norm_act,
    separable_conv_norm_act,
)

DROPOUT_RATE = 0.1  # the original's keep_prob 0.9 after concat_projection
# TF1 scopes of ASPP's layers: "last layers" for the original's get_extra_layer_scopes
LAST_LAYER_SCOPES = ("image_pooling", "aspp", "concat_projection")
# The ModelOptions fields only ASPP reads (its option group; see deeplab.model.heads)
OPTIONS = ("atrous_rates", "add_image_level_feature", "image_pooling_crop_size",
           "image_pooling_stride", "aspp_with_separable_conv", "aspp_with_concat_projection",
           "aspp_with_squeeze_and_excitation", "image_se_uses_qsigmoid", "aspp_convs_filters")


def scale_dimension(dim: int, scale: float) -> int:
    """The original's size rule: int((dim - 1) * scale + 1)."""
    return int((float(dim) - 1.0) * scale + 1.0)


@keras.saving.register_keras_serializable(package="deeplab")
class FixedImagePooling(keras.layers.Layer):
    """VALID average pooling with a kernel fixed by a crop size, as the original's
    `image_pooling_crop_size`: [B, h, w, C] -> [B, (h - kh) // sh + 1, (w - kw) // sw + 1, C].

    A map smaller than the kernel (an input below the crop, where the original cannot build)
    is averaged whole instead: [B, 1, 1, C].
    """

    def __init__(self, pool_size, strides, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(pool_size)
        self.strides = tuple(strides)

    def call(self, x):
        if None not in tuple(x.shape[1:3]):  # a static size (exports at a fixed crop): no cond
            if all(d >= k for d, k in zip(x.shape[1:3], self.pool_size, strict=True)):
                return tf.nn.avg_pool2d(x, self.pool_size, self.strides, "VALID")
            return tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        size = tf.shape(x)[1:3]
        fits = tf.reduce_all(size >= tf.constant(self.pool_size))
        # The pooling branch sees an input of unknown size, so tracing it for a small static
        # shape does not fail shape inference although that branch is never run.
        loose = tf.compat.v1.placeholder_with_default(x, [None, None, None, x.shape[-1]])
        return tf.cond(fits,
                       lambda: tf.nn.avg_pool2d(loose, self.pool_size, self.strides, "VALID"),
                       lambda: tf.reduce_mean(x, axis=[1, 2], keepdims=True))

    def compute_output_shape(self, shape):
        size = tuple(shape[1:3])
        if None in size:
            return (shape[0], None, None, shape[3])
        if any(d < k for d, k in zip(size, self.pool_size, strict=True)):
            return (shape[0], 1, 1, shape[3])
        return (shape[0], *((d - k) // s + 1 for d, k, s in zip(
            size, self.pool_size, self.strides, strict=True)), shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides}


def image_pooling(features, options, norm: NormSpec):
    """The image-level branch: [B, h, w, C] -> [B, h, w, aspp_convs_filters].

    Global mean, or VALID average pooling with the kernel of `image_pooling_crop_size` at the
    output stride and `image_pooling_stride`; then 1x1 conv + BN + ReLU (a gate: conv with
    bias + sigmoid / hard_sigmoid), upsampled (align_corners) to the feature size.
    """
    if options.image_pooling_crop_size is None:
        pooled = GlobalMeanPool(name="image_pooling.mean")(features)
    else:
        pool = [scale_dimension(d, 1.0 / options.output_stride)
                for d in options.image_pooling_crop_size]
        pooled = FixedImagePooling(pool, options.image_pooling_stride,
                                   name="image_pooling.avg_pool")(features)
    if options.aspp_with_squeeze_and_excitation:
        gate = hard_sigmoid if options.image_se_uses_qsigmoid else "sigmoid"
        pooled = conv_norm_act(pooled, options.aspp_convs_filters, 1, "image_pooling", None,
                               activation=gate)
    else:
        pooled = conv_norm_act(pooled, options.aspp_convs_filters, 1, "image_pooling", norm)
    return ResizeLike(name="image_pooling.resize")(pooled, features)


def build(features, options, norm: NormSpec):
    """ASPP: [B, h, w, C] -> [B, h, w, aspp_convs_filters] (see the module docstring)."""
    depth = options.aspp_convs_filters
    act = relu_or_relu6(options.use_bounded_activation)  # image pooling keeps its ReLU
    gate = None
    branches = []
    if options.add_image_level_feature:
        pooled = image_pooling(features, options, norm)
        if options.aspp_with_squeeze_and_excitation:
            gate = pooled
        else:
            branches.append(pooled)
    branches.append(conv_norm_act(features, depth, 1, "aspp0", norm, activation=act))
    for i, rate in enumerate(options.atrous_rates or (), 1):
        if options.aspp_with_separable_conv:
            branches.append(separable_conv_norm_act(features, depth, 3, f"aspp{i}", norm,
                                                    rate=rate, depthwise_activation=act,
                                                    pointwise_activation=act,
                                                    init_stddevs=HEAD_SEPARABLE_STDDEVS))
        else:
            branches.append(conv_norm_act(features, depth, 3, f"aspp{i}", norm, rate=rate,
                                          activation=act))
    x = branches[0] if len(branches) == 1 else keras.layers.Concatenate(name="aspp_concat")(
        branches)
    if options.aspp_with_concat_projection:
        x = conv_norm_act(x, depth, 1, "concat_projection", norm, activation=act)
        x = Dropout(DROPOUT_RATE, name="concat_projection.dropout")(x)
    if gate is not None:
        x = keras.layers.Multiply(name="image_pooling.gate")([x, gate])
    return x
