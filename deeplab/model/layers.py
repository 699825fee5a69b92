"""Building blocks shared by every backbone and the DeepLab head.

Naming rule: a Keras layer is named after the TF1 variable scope of the original DeepLab
with "/" replaced by "." (Keras 3 forbids "/" in layer names). `tf1_scope(layer.name)` turns
it back, and `deeplab.checkpoints` maps each Keras weight to the original variable name from
that scope and the layer type. A convolution with scope S normalises in `S/BatchNorm` (or
`S/GroupNorm`), as slim did.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from deeplab.model.backbone_spec import MEAN_RGB, SUBTRACT_MEAN, UNIT_RANGE
from deeplab.model.folded_conv import Activation, Conv2D, DepthwiseConv2D, fold_batch_norm

# TF1's fused BatchNorm kernel, which every BatchNorm of the original runs, raises a smaller
# epsilon to this value; the original therefore computes with it wherever 1e-5 is asked for.
FUSED_MIN_EPSILON = 1.001e-5


def keras_name(scope: str) -> str:
    """TF1 scope 'a/b/c' -> Keras layer name 'a.b.c'."""
    return scope.replace("/", ".")


def tf1_scope(layer_name: str) -> str:
    """Keras layer name 'a.b.c' -> TF1 scope 'a/b/c'."""
    return layer_name.replace(".", "/")


@dataclasses.dataclass(frozen=True)
class NormSpec:
    """How a part of the network normalises.

    kind: "batch" or "group"; epsilon and decay (Keras `momentum`) of BatchNorm; groups of
    GroupNorm; sync: BatchNorm statistics all-reduced across replicas while training.
    """

    epsilon: float = 1e-5
    decay: float = 0.9997
    kind: str = "batch"
    groups: int = 32
    sync: bool = False


def _group_count(channels: int, groups: int) -> int:
    """Largest divisor of `channels` that is <= `groups`."""
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return g


def norm_layer(spec: NormSpec, scope: str, channels: int,
               norm_scope: str | None = None) -> keras.layers.Layer:
    """The normalisation that follows the convolution with TF1 scope `scope`: in
    `scope/BatchNorm` (`scope/GroupNorm`), or in `norm_scope` when given (the NAS cells name
    their BatchNorms apart from their convolutions, e.g. `conv0` / `conv0_bn`)."""
    if spec.kind == "group":
        return keras.layers.GroupNormalization(
            groups=_group_count(channels, spec.groups), epsilon=spec.epsilon,
            name=keras_name(norm_scope or f"{scope}/GroupNorm"))
    from deeplab.model.batch_norm import BatchNormalization

    return BatchNormalization(epsilon=max(spec.epsilon, FUSED_MIN_EPSILON), momentum=spec.decay,
                              synchronized=spec.sync,
                              name=keras_name(norm_scope or f"{scope}/BatchNorm"))


def fixed_padding(x, kernel_size: int, rate: int = 1, name: str | None = None):
    """Zero-pads H and W so a VALID strided conv matches the original's `conv2d_same`.

    The effective kernel is k + (k - 1)(rate - 1); the total padding k_eff - 1 is split with
    the smaller half first, independently of the input size.
    """
    pad_total = kernel_size + (kernel_size - 1) * (rate - 1) - 1
    if pad_total == 0:
        return x
    beg = pad_total // 2
    return keras.layers.ZeroPadding2D(((beg, pad_total - beg), (beg, pad_total - beg)),
                                      name=name)(x)


def _normalise_activate(x, conv, norm: NormSpec | None, activation, scope: str,
                        channels: int):
    """`activation(norm(x))` (each if given) of `x`, the output of `conv`; a BatchNorm and
    the activation after it are folded into `conv` (`deeplab.model.folded_conv.fold_batch_norm`).

    activation: a Keras activation name or a function (the layer is named by its __name__).
    """
    normed = x if norm is None else norm_layer(norm, scope, channels)
    if norm is not None:
        x = normed(x)
    act = None
    if activation is not None:
        label = activation if isinstance(activation, str) else activation.__name__
        act = Activation(activation, name=keras_name(f"{scope}/{label}"))
        x = act(x)
    if norm is not None:
        fold_batch_norm(conv, normed, act)
    return x


# Initial weights of layers a checkpoint does not provide, as the original draws them:
# slim.conv2d's default is Glorot uniform (Keras' too); the logits and the head's split
# separable convolutions (ASPP, decoder, DPC) use truncated normals of these stddevs.
LOGITS_STDDEV = 0.01
HEAD_SEPARABLE_STDDEVS = (0.33, 0.06)  # depthwise, pointwise


def truncated_normal(stddev: float | None):
    """Keras' TruncatedNormal (draws beyond 2 stddev redrawn), or Glorot uniform for None."""
    if stddev is None:
        return "glorot_uniform"
    return keras.initializers.TruncatedNormal(stddev=stddev)


def conv_norm_act(x, filters: int, kernel_size: int, scope: str, norm: NormSpec | None,
                  stride: int = 1, rate: int = 1, activation: str | None = "relu",
                  use_bias: bool | None = None, explicit_padding: bool = True, dtype=None,
                  init_stddev: float | None = None):
    """Conv2D (+ norm) (+ activation), padded as the original's `conv2d_same`.

    x: [B, H, W, C]. Returns [B, ceil(H / stride), ceil(W / stride), filters]. Strided
    convolutions use `fixed_padding` + VALID when `explicit_padding`, else TF 'SAME'.
    Without a norm the convolution has a bias (slim's default) unless `use_bias` says so.
    init_stddev: kernel initialised from a truncated normal of this stddev (else Glorot
    uniform); biases start at zero.
    """
    padding = "same"
    if stride > 1 and kernel_size > 1 and explicit_padding:
        x = fixed_padding(x, kernel_size, rate, name=keras_name(f"{scope}/pad"))
        padding = "valid"
    if use_bias is None:
        use_bias = norm is None
    conv = Conv2D(filters, kernel_size, strides=stride, dilation_rate=rate, padding=padding,
                  use_bias=use_bias, name=keras_name(scope), dtype=dtype,
                  kernel_initializer=truncated_normal(init_stddev))
    return _normalise_activate(conv(x), conv, norm, activation, scope, filters)


def depthwise_norm_act(x, kernel_size: int, scope: str, norm: NormSpec | None,
                       stride: int = 1, rate: int = 1, activation: str | None = "relu",
                       explicit_padding: bool = True, init_stddev: float | None = None):
    """DepthwiseConv2D (multiplier 1, no bias) (+ norm) (+ activation); padding as above."""
    padding = "same"
    if stride > 1 and explicit_padding:
        x = fixed_padding(x, kernel_size, rate, name=keras_name(f"{scope}/pad"))
        padding = "valid"
    conv = DepthwiseConv2D(kernel_size, strides=stride, dilation_rate=rate, padding=padding,
                           use_bias=False, name=keras_name(scope),
                           depthwise_initializer=truncated_normal(init_stddev))
    return _normalise_activate(conv(x), conv, norm, activation, scope, x.shape[-1])


def separable_conv_norm_act(x, filters: int, kernel_size: int, scope: str,
                            norm: NormSpec | None, stride: int = 1, rate: int = 1,
                            depthwise_activation: str | None = "relu",
                            pointwise_activation: str | None = "relu",
                            explicit_padding: bool = True,
                            init_stddevs: tuple[float, float] | None = None):
    """Split separable conv: `{scope}_depthwise` then 1x1 `{scope}_pointwise`, each normed.

    This is the original's `split_separable_conv2d` / `separable_conv2d_same` layout.
    init_stddevs: (depthwise, pointwise) truncated-normal stddevs of the initial kernels
    (HEAD_SEPARABLE_STDDEVS in the head), else Glorot uniform.
    """
    depthwise_stddev, pointwise_stddev = init_stddevs or (None, None)
    x = depthwise_norm_act(x, kernel_size, f"{scope}_depthwise", norm, stride=stride,
                           rate=rate, activation=depthwise_activation,
                           explicit_padding=explicit_padding, init_stddev=depthwise_stddev)
    return conv_norm_act(x, filters, 1, f"{scope}_pointwise", norm,
                         activation=pointwise_activation, init_stddev=pointwise_stddev)


def resize_bilinear_align_corners(images, size):
    """Bilinear resize with align_corners=True (the original's everywhere-resize).

    images: [B, H, W, C] float; size: (height, width) ints or int32 tensors.
    Returns [B, height, width, C] in the dtype of `images` (bfloat16 is resized in float32).
    """
    dtype = images.dtype
    resized = tf.raw_ops.ResizeBilinear(
        images=tf.cast(images, tf.float32) if dtype != tf.float32 else images,
        size=tf.cast(size, tf.int32), align_corners=True, half_pixel_centers=False)
    return tf.cast(resized, dtype)


@keras.saving.register_keras_serializable(package="deeplab")
class ResizeLike(keras.layers.Layer):
    """Resizes its first input (bilinear, align_corners) to the H and W of its second.

    Inputs: x [B, h, w, C], reference [B, H, W, *]. Output: [B, H, W, C]. Works with sizes
    unknown at trace time.
    """

    def call(self, x, reference):
        size = tf.shape(reference)[1:3]
        return resize_bilinear_align_corners(x, size)

    def compute_output_shape(self, x_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])


@keras.saving.register_keras_serializable(package="deeplab")
class GlobalMeanPool(keras.layers.Layer):
    """Mean over H and W, kept as [B, 1, 1, C] (image pooling over the whole map)."""

    def call(self, x):
        return tf.reduce_mean(x, axis=[1, 2], keepdims=True)

    def compute_output_shape(self, shape):
        return (shape[0], 1, 1, shape[3])


@keras.saving.register_keras_serializable(package="deeplab")
class Preprocess(keras.layers.Layer):
    """Raw pixels [0, 255] -> network input, in float32 whatever the compute policy.

    mode "unit_range": x * 2 / 255 - 1 (xception, mobilenet_v2, resnet *_beta);
    mode "subtract_mean": x - mean RGB [123.15, 115.90, 103.06] (plain resnet_v1).
    """

    MEAN_RGB = MEAN_RGB

    def __init__(self, mode: str, **kwargs):
        kwargs.pop("dtype", None)  # always float32 (a saved config repeats it)
        super().__init__(dtype="float32", **kwargs)
        if mode not in (UNIT_RANGE, SUBTRACT_MEAN):
            raise ValueError(f"unknown preprocessing mode {mode!r}")
        self.mode = mode

    def call(self, x):
        x = tf.cast(x, tf.float32)
        if self.mode == UNIT_RANGE:
            return (2.0 / 255.0) * x - 1.0
        return x - tf.constant(self.MEAN_RGB, tf.float32)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="deeplab")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` (training: x * keep / (1 - rate) at random, else x) whose
    random keep mask can be replaced by a given one.

    `replay(multiplier)` (a float32 variable shaped like the layer's output, holding
    1 / keep_prob where a value is kept and 0 elsewhere) makes every training call return
    x * multiplier: how the training conformance check feeds the original's recorded masks
    through the same training step; `replay(None)` restores random masks.
    """

    _replayed = None

    def replay(self, multiplier) -> None:
        self._replayed = multiplier

    def call(self, inputs, training=False):
        if training and self._replayed is not None:
            return inputs * tf.cast(self._replayed, inputs.dtype)
        return super().call(inputs, training=training)
