"""The assembled DeepLabv3 / DeepLabv3+ network: backbone, ASPP, decoder, logits.

`build_model(options)` returns a Keras model from raw pixels [B, H, W, 3] (float, 0..255;
H and W may be unknown) to float32 logits at the decoder stride (4) or, without a decoder,
at the output stride; sizes follow `scale_dimension(d, 1 / stride) = (d - 1) // stride + 1`.
Upsampling to the image size belongs to `deeplab.model.predict`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.model import backbones
from deeplab.model.layers import (
    GlobalMeanPool,
    NormSpec,
    Preprocess,
    ResizeLike,
    conv_norm_act,
    keras_name,
    separable_conv_norm_act,
)
from deeplab.model.options import ModelOptions

HEAD_EPSILON = 1e-5
LOGITS_SCOPE = "logits/semantic"
DROPOUT_RATE = 0.1  # the original's keep_prob 0.9 after concat_projection


def head_norm(options: ModelOptions) -> NormSpec:
    """Normalisation of ASPP, image pooling, concat projection and decoder."""
    return NormSpec(epsilon=HEAD_EPSILON, decay=options.batch_norm_decay,
                    kind=options.normalization, groups=options.group_norm_groups,
                    sync=options.sync_batch_norm)


def scale_dimension(dim: int, scale: float) -> int:
    """The original's size rule: int((dim - 1) * scale + 1)."""
    return int((float(dim) - 1.0) * scale + 1.0)


class FixedImagePooling(keras.layers.Layer):
    """VALID average pooling with a kernel fixed by a crop size, as the original's
    `image_pooling_crop_size`: [B, h, w, C] -> [B, h', w', C]."""

    def __init__(self, pool_size, strides, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(pool_size)
        self.strides = tuple(strides)

    def call(self, x):
        return tf.nn.avg_pool2d(x, self.pool_size, self.strides, "VALID")

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides}


def _image_pooling(features, options: ModelOptions, norm):
    if options.image_pooling_crop_size is None:
        pooled = GlobalMeanPool(name="image_pooling.mean")(features)
    else:
        pool = [scale_dimension(d, 1.0 / options.output_stride)
                for d in options.image_pooling_crop_size]
        pooled = FixedImagePooling(pool, options.image_pooling_stride,
                                   name="image_pooling.avg_pool")(features)
    pooled = conv_norm_act(pooled, options.aspp_convs_filters, 1, "image_pooling", norm)
    return ResizeLike(name="image_pooling.resize")(pooled, features)


def aspp(features, options: ModelOptions):
    """Atrous spatial pyramid pooling: [B, h, w, C] -> [B, h, w, aspp_convs_filters].

    Branches in the original's order: image pooling, 1x1 (`aspp0`), one per atrous rate
    (`aspp1`, ...); concatenated, projected by a 1x1 (`concat_projection`), dropout 0.1.
    """
    norm = head_norm(options)
    depth = options.aspp_convs_filters
    branches = []
    if options.add_image_level_feature:
        branches.append(_image_pooling(features, options, norm))
    branches.append(conv_norm_act(features, depth, 1, "aspp0", norm))
    for i, rate in enumerate(options.atrous_rates or (), 1):
        if options.aspp_with_separable_conv:
            branches.append(separable_conv_norm_act(features, depth, 3, f"aspp{i}", norm,
                                                    rate=rate))
        else:
            branches.append(conv_norm_act(features, depth, 3, f"aspp{i}", norm, rate=rate))
    x = keras.layers.Concatenate(name="aspp_concat")(branches)
    x = conv_norm_act(x, depth, 1, "concat_projection", norm)
    return keras.layers.Dropout(DROPOUT_RATE, name="concat_projection.dropout")(x)


def decoder(features, low_level, options: ModelOptions):
    """DeepLabv3+ decoder: ASPP output [B, h, w, C] and low-level [B, H4, W4, C'] ->
    [B, H4, W4, decoder_filters].

    The low-level map is projected to 48 channels, the ASPP output upsampled to its size
    (align_corners), both concatenated and refined by two 3x3 convolutions.
    """
    norm = head_norm(options)
    projected = conv_norm_act(low_level, 48, 1, "decoder/feature_projection0", norm)
    upsampled = ResizeLike(name=keras_name("decoder/resize"))(features, projected)
    x = keras.layers.Concatenate(name=keras_name("decoder/concat"))([upsampled, projected])
    for i in range(2):
        scope = f"decoder/decoder_conv{i}"
        if options.decoder_use_separable_conv:
            x = separable_conv_norm_act(x, options.decoder_filters, 3, scope, norm)
        else:
            x = conv_norm_act(x, options.decoder_filters, 3, scope, norm)
    return x


def build_model(options: ModelOptions, name: str | None = None) -> keras.Model:
    """The DeepLab network for `options`; see the module docstring for shapes and units."""
    images = keras.Input(shape=(None, None, 3), dtype="float32", name="images")
    x = Preprocess(backbones.preprocessing_mode(options.model_variant),
                   name="preprocess")(images)
    x, low_level = backbones.build_backbone(x, options)
    if options.aspp_with_batch_norm:
        x = aspp(x, options)
    if options.decoder_output_stride is not None:
        if low_level is None:
            raise ValueError(f"{options.model_variant} has no decoder end point; "
                             "set decoder_output_stride=None")
        x = decoder(x, low_level, options)
    logits = conv_norm_act(x, options.num_classes, options.logits_kernel_size, LOGITS_SCOPE,
                           None, activation=None, dtype="float32")
    return keras.Model(images, logits, name=name or f"deeplab_{options.model_variant}")
