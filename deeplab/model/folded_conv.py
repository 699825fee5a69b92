"""Convolutions of every network here: Keras' Conv2D and DepthwiseConv2D, made faster.

    conv = Conv2D(256, 1, use_bias=False, name="aspp0")
    norm = BatchNormalization(name="aspp0.BatchNorm")
    y = norm(conv(x))
    fold_batch_norm(conv, norm)

- **BatchNorm folding.** Once `fold_batch_norm(conv, norm)` links a convolution to the
  BatchNorm that follows it, every call in which that BatchNorm uses its moving statistics
  (inference, or training with a frozen BatchNorm) computes conv(x, kernel * scale) + offset
  in the convolution and the BatchNorm passes its input through. The result is the same
  function, one pass over the activations instead of three (conv, multiply, add), and in a
  graph the Conv2D + BiasAdd + Relu that remains is fused by TF's remapper. While the
  BatchNorm uses batch statistics (training it) nothing is folded.
- **Activation folding.** `fold_batch_norm(conv, norm, activation)` also links the
  `Activation` layer applied to the BatchNorm's output: while the BatchNorm is folded, the
  convolution applies the activation right after its bias (before the reshape of a 1x1
  matmul), where the remapper fuses it into the MatMul/Conv2D, and the layer passes its input
  through. An unfused bfloat16 ReLU is an Eigen loop through float32: 19 % of Xception-65's
  bfloat16 forward.
- **1x1 convolutions as a matmul.** A 1x1 Conv2D is a [B*H*W, C] x [C, F] matmul (on every
  stride-th pixel), which oneDNN runs 10-25 % faster than its convolution at the sizes of
  Xception's pointwise convolutions (with the bias fused into the MatMul). It also keeps
  TF 2.21's remapper away from a Conv2D + BiasAdd + Add whose sum feeds a ReLU and another
  layer (Xception's strided shortcuts): fusing that pattern fails, and the remapper then
  leaves the whole graph unfused.

- **Baked for inference.** `bake_batch_norm(model)` computes every linked pair's folded
  kernel and bias once (numpy, float32), `baked_variables` holds them in variables, and
  `baked(model, weights)` makes the convolutions use them while an export or a Predictor is
  traced: the graph reads the folded weights, with no multiply or cast per call and nothing
  left for grappler to fold (it refuses constants over 10 MB, such as Xception's
  1536 -> 2048 pointwise kernel).
- **Plain for converters.** While `plain_convolutions(model)` is active, a 1x1 convolution
  is traced as a Conv2D (not reshape + matmul + reshape, whose shapes are computed at run
  time) and a dilated convolution as one Conv2D / DepthwiseConv2dNative with dilations (not
  SpaceToBatchND + convolution + BatchToSpaceND): TFLite's converter maps each to one
  CONV_2D / DEPTHWISE_CONV_2D, which XNNPACK runs inside one delegated partition.

The classes subclass Keras' and keep their class names and weights, so checkpoints and
`count_macs` (isinstance) and the weight decay (keyed on the class name) treat them as
Keras' own.
"""

from __future__ import annotations

import contextlib
import weakref

import keras
import numpy as np
import tensorflow as tf

from deeplab.model.batch_norm import BatchNormalization
from deeplab.model.layer_walk import all_layers


def fold_batch_norm(conv: keras.layers.Layer, norm: keras.layers.Layer,
                    activation: keras.layers.Layer | None = None) -> None:
    """Links `conv` (Conv2D or DepthwiseConv2D here) and the BatchNorm applied to its output.

    `norm` must be `deeplab.model.batch_norm.BatchNormalization` (anything else is left
    alone) whose input is exactly the output of `conv`. `activation`, if given, is the
    `Activation` (this module's) whose input is exactly the output of `norm`, and the only
    consumer of it. The links are weak references (not tracked as sub-layers, so no layer
    gains another's weights).
    """
    if not isinstance(norm, BatchNormalization):
        return
    conv._folded_norm = weakref.ref(norm)
    norm._folded_into = weakref.ref(conv)
    if isinstance(activation, Activation):
        conv._folded_activation = activation.activation
        activation._folded_norm = weakref.ref(norm)


@keras.saving.register_keras_serializable(package="deeplab")
class Activation(keras.layers.Activation):
    """`keras.layers.Activation` that passes its input through while the convolution
    before its BatchNorm applies it (see `fold_batch_norm`)."""

    _folded_norm = None

    def call(self, inputs, training=None):
        norm = self._folded_norm() if self._folded_norm is not None else None
        if norm is not None and norm.uses_moving_statistics(training):
            return inputs
        return super().call(inputs)


def _folded_pairs(model: keras.Model):
    """[(conv, norm)] of every convolution in `model` linked to a BatchNorm."""
    pairs = []
    for layer in all_layers(model):
        norm = layer._folded_norm() if isinstance(layer, _FoldsBatchNorm) and \
            layer._folded_norm is not None else None
        if norm is not None:
            pairs.append((layer, norm))
    return pairs


def bake_batch_norm(model: keras.Model) -> dict:
    """{conv layer name: (kernel, bias)} float32 numpy with the linked BatchNorm's moving
    statistics folded in, as `_kernel_and_bias` computes them per call (same float32 ops)."""
    weights = {}
    for conv, norm in _folded_pairs(model):
        if conv.name in weights:
            raise ValueError(f"two convolutions named {conv.name!r}: cannot bake by name")
        scale, offset = (t.numpy() for t in norm.moving_scale_offset())
        kernel = np.asarray(conv.kernel.numpy(), np.float32)
        output_axes = 2 if isinstance(conv, keras.layers.DepthwiseConv2D) else 1
        rank = kernel.ndim
        shape = [1] * (rank - output_axes) + list(kernel.shape[rank - output_axes:])
        if conv.use_bias:
            offset = offset + np.asarray(conv.bias.numpy(), np.float32) * scale
        weights[conv.name] = (kernel * scale.reshape(shape), offset)
    return weights


def baked_variables(model: keras.Model, compute_dtype: bool = False) -> dict:
    """`bake_batch_norm(model)` as non-trainable variables {conv name: (kernel, bias)}:
    float32, or with `compute_dtype` each convolution's compute dtype (bfloat16 under
    mixed_bfloat16: no cast per call either). They hold the weights of the moment."""
    dtypes = {layer.name: layer.compute_dtype for layer, _ in _folded_pairs(model)}
    return {name: tuple(tf.Variable(tf.cast(value, dtypes[name] if compute_dtype else
                                            tf.float32), trainable=False, name=f"{name}_{part}")
                        for value, part in zip(pair, ("kernel", "bias"), strict=True))
            for name, pair in bake_batch_norm(model).items()}


@contextlib.contextmanager
def baked(model: keras.Model, weights: dict):
    """While active, the linked convolutions of `model` use `weights` (from
    `bake_batch_norm`; numpy arrays, or variables holding them) instead of folding per call
    whenever their BatchNorm uses moving statistics. Meant for tracing an export."""
    pairs = [(conv, weights[conv.name]) for conv, _ in _folded_pairs(model)
             if conv.name in weights]
    for conv, kernel_bias in pairs:
        conv._baked = kernel_bias
    try:
        yield
    finally:
        for conv, _ in pairs:
            conv._baked = None


@contextlib.contextmanager
def plain_convolutions(model: keras.Model):
    """While active, the convolutions of `model` trace as single Conv2D and
    DepthwiseConv2dNative ops, dilated ones too (see the module docstring): the same
    function, for a graph a converter reads (the INT8 TFLite export). TF runs it as well,
    only slower (its matmul is the faster 1x1 convolution)."""
    layers = [layer for layer in all_layers(model) if isinstance(layer, _FoldsBatchNorm)]
    for layer in layers:
        layer._plain = True
    try:
        yield
    finally:
        for layer in layers:
            layer._plain = False


class _FoldsBatchNorm:
    """Kernel and bias of a convolution with its linked BatchNorm folded in (when in use)."""

    _folded_norm = None
    _folded_activation = None  # the linked Activation's function
    _baked = None  # (kernel, bias) tensors while `baked` is active
    _quantizer = None  # deeplab.model.quantize.Quantizer while quantization-aware
    _plain = False  # True while `plain_convolutions` is active

    def _plain_dilations(self) -> list[int] | None:
        """[1, rate_h, rate_w, 1] while `plain_convolutions` is active and this is a dilated
        stride-1 NHWC convolution (then traced as one op with dilations), else None."""
        if (self._plain and max(self.dilation_rate) > 1 and max(self.strides) == 1
                and self.data_format == "channels_last" and getattr(self, "groups", 1) == 1):
            return [1, *self.dilation_rate, 1]
        return None

    def _quantized_output(self, outputs, training):
        """`outputs` fake-quantised (quantization-aware training), unless a linked
        BatchNorm still follows (it normalises with batch statistics: nothing folded)."""
        if self._quantizer is None or (self._folded_norm is not None
                                       and self._norm_to_fold(training) is None):
            return outputs
        return self._quantizer.activation(outputs, training)

    def _norm_to_fold(self, training):
        norm = self._folded_norm() if self._folded_norm is not None else None
        if norm is None or not norm.uses_moving_statistics(training):
            return None
        return norm

    def _kernel_bias_activation(self, training, output_axes: int):
        """(kernel, bias or None, activation or None): kernel and bias in the compute dtype,
        the BatchNorm folded in if linked, and the linked activation while it is.

        output_axes: how many trailing axes of `kernel` index the output channels, row-major
        (1 for Conv2D [kh, kw, C, F]; 2 for DepthwiseConv2D [kh, kw, C, M], channel c * M + m).
        """
        bias = self.bias if self.use_bias else None
        norm = self._norm_to_fold(training)
        if norm is None:
            kernel, activation = self.kernel, None
        else:
            kernel, bias = self._folded_kernel_and_bias(norm, bias, output_axes)
            activation = self._folded_activation
        if self._quantizer is not None:
            kernel = self._quantizer.kernel(kernel, output_axes)
        return kernel, bias, activation

    def _folded_kernel_and_bias(self, norm, bias, output_axes: int):
        if self._baked is not None:
            return (tf.cast(self._baked[0], self.compute_dtype),
                    tf.cast(self._baked[1], self.compute_dtype))
        scale, offset = norm.moving_scale_offset()  # float32 [C_out]
        rank = len(self.kernel.shape)
        shape = [1] * (rank - output_axes) + list(self.kernel.shape[rank - output_axes:])
        kernel = tf.cast(self.kernel, tf.float32) * tf.reshape(scale, shape)
        if bias is not None:
            offset += tf.cast(bias, tf.float32) * scale
        return tf.cast(kernel, self.compute_dtype), tf.cast(offset, self.compute_dtype)


@keras.saving.register_keras_serializable(package="deeplab")
class Conv2D(_FoldsBatchNorm, keras.layers.Conv2D):
    """`keras.layers.Conv2D` (channels_last) that folds a linked BatchNorm and runs 1x1 as a
    matmul; see the module docstring. inputs [B, H, W, C] -> [B, H', W', filters]."""

    def call(self, inputs, training=None):
        kernel, bias, activation = self._kernel_bias_activation(training, output_axes=1)
        if self._is_pointwise():
            strides = tuple(self.strides)
            if strides != (1, 1):
                # A 1x1 kernel reads only every stride-th pixel. A 1x1 average pool takes
                # them ~10x faster than the strided slice x[:, ::s, ::s].
                inputs = tf.nn.avg_pool2d(inputs, 1, strides, "VALID")
            outputs = _pointwise(inputs, kernel, bias, activation)
        elif self._plain_dilations() is not None:
            outputs = _bias_activation(tf.raw_ops.Conv2D(
                input=inputs, filter=kernel, strides=[1, 1, 1, 1], padding=self.padding.upper(),
                dilations=self._plain_dilations()), bias, activation)
        else:
            outputs = _bias_activation(self.convolution_op(inputs, kernel), bias, activation)
        outputs = outputs if self.activation is None else self.activation(outputs)
        return self._quantized_output(outputs, training)

    def _is_pointwise(self) -> bool:
        # Any stride and padding: a 1x1 kernel never reads padding, and 'valid' and 'same'
        # both give ceil(H / stride) outputs. Not while quantization-aware: the reshaped
        # kernel would lose its per-channel quantisation axis for TFLite's converter.
        return (self._quantizer is None and not self._plain
                and tuple(self.kernel_size) == (1, 1)
                and self.groups == 1
                and self.data_format == "channels_last")


@keras.saving.register_keras_serializable(package="deeplab")
class DepthwiseConv2D(_FoldsBatchNorm, keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D` (channels_last) that folds a linked BatchNorm; see the
    module docstring. inputs [B, H, W, C] -> [B, H', W', C * depth_multiplier]."""

    def call(self, inputs, training=None):
        kernel, bias, activation = self._kernel_bias_activation(training, output_axes=2)
        if self._plain_dilations() is not None:
            outputs = tf.raw_ops.DepthwiseConv2dNative(
                input=inputs, filter=kernel, strides=[1, 1, 1, 1], padding=self.padding.upper(),
                dilations=self._plain_dilations())
        else:
            outputs = keras.ops.depthwise_conv(
                inputs, kernel, strides=self.strides, padding=self.padding,
                dilation_rate=self.dilation_rate, data_format=self.data_format)
        outputs = _bias_activation(outputs, bias, activation)
        outputs = outputs if self.activation is None else self.activation(outputs)
        return self._quantized_output(outputs, training)


def _bias_activation(outputs, bias, activation):
    """activation(outputs + bias), each part only if given; bias [F] on the last axis."""
    if bias is not None:
        outputs = tf.nn.bias_add(outputs, bias)
    return outputs if activation is None else activation(outputs)


def _pointwise(inputs, kernel, bias, activation=None):
    """1x1 convolution as one matmul: [B, H, W, C] x [1, 1, C, F] (+ [F]), then
    `activation` -> [B, H, W, F]."""
    channels, filters = kernel.shape[2], kernel.shape[3]
    flat = tf.matmul(tf.reshape(inputs, [-1, channels]), tf.reshape(kernel, [channels, filters]))
    flat = _bias_activation(flat, bias, activation)
    shape = tf.concat([tf.shape(inputs)[:-1], [filters]], axis=0)
    return tf.reshape(flat, shape)
