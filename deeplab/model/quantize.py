"""Quantization-aware training: fake INT8 quantisation inside the network's convolutions.

`attach(model)` gives every convolution of `deeplab.model.folded_conv` (Conv2D, DepthwiseConv2D)
two fake quantisers, the ones TFLite's INT8 kernels apply at inference:

- **weights, per output channel, symmetric**: the kernel the convolution uses (its linked
  BatchNorm folded in while folded) is rounded to 255 levels in [-m_c, m_c], m_c the largest
  |weight| of output channel c (int8 [-127, 127], scale m_c / 127, zero point 0);
- **activations, per tensor**: the convolution's output (after its bias and the folded
  activation, as TFLite's fused Conv2D + ReLU writes it) is rounded to 256 levels in
  [min, max], moving ranges as the original's tf.contrib.quantize kept them: while training,
  min <- min + (1 - decay) (min(batch, 0) - min) (same for max), decay 0.999; the first
  training batch sets them (no fixed start range).

Both round in the forward pass and pass gradients straight through (inside the range for
activations: `tf.quantization.fake_quant_with_min_max_vars`). The ranges are non-trainable
variables of each convolution named `act_quant_min` / `act_quant_max` (TF1
`<scope>/act_quant/min`, `max`, the original's names), so checkpoints hold them, runs
resume and eval sees them.

`attach(model, step, delay_step)` quantises only while `step >= delay_step` (the original's
--quantize_delay_step: the global step from which quantisation is on); ranges follow the
batches from the first step. Without `step` (evaluation, export) quantisation is always on.
The activations between convolutions that no convolution writes (residual adds, concats,
resizes) stay float here; TFLite's converter calibrates those (see deeplab.export.qat).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from deeplab.model import folded_conv as conv_lib
from deeplab.model.layer_walk import all_layers

EMA_DECAY = 0.999  # the original's moving-average decay of the activation ranges
NUM_BITS = 8


class Quantizer:
    """What one convolution needs to fake-quantise: its range variables and the gate."""

    def __init__(self, layer: keras.layers.Layer, step=None, delay_step: int = 0):
        self.step, self.delay_step = step, delay_step
        self.min = _range_variable(layer, "act_quant_min")
        self.max = _range_variable(layer, "act_quant_max")

    def gate(self):
        """1.0 while quantisation is on, else 0.0 (float32 scalar); None: always on."""
        if self.step is None:
            return None
        return tf.cast(tf.greater_equal(self.step, self.delay_step), tf.float32)

    def kernel(self, kernel, output_axes: int):
        """`kernel` [..., out channels] rounded per output channel (symmetric, narrow).

        Plain ops rather than a FakeQuant op: the export folds them into a float kernel
        already on the int8 grid, which the converter's own per-channel quantisation
        (scale max|w| / 127) then represents exactly, whatever the kernel's layout.
        """
        shape = tf.shape(kernel)
        rank = len(kernel.shape)
        flat = tf.reshape(tf.cast(kernel, tf.float32),
                          tf.concat([shape[:rank - output_axes], [-1]], axis=0))
        limit = tf.reduce_max(tf.abs(flat), axis=list(range(rank - output_axes)))
        scale = tf.maximum(limit, 1e-12) / (2 ** (NUM_BITS - 1) - 1)
        quantized = flat + tf.stop_gradient(tf.round(flat / scale) * scale - flat)
        return tf.cast(tf.reshape(self._gated(flat, quantized), shape), kernel.dtype)

    def activation(self, outputs, training):
        """`outputs` rounded per tensor to [min, max]; training updates the ranges first."""
        values = tf.cast(outputs, tf.float32)
        if training:
            self._update(values)
        quantized = tf.quantization.fake_quant_with_min_max_vars(
            values, tf.stop_gradient(self.min), tf.stop_gradient(self.max), num_bits=NUM_BITS)
        return tf.cast(self._gated(values, quantized), outputs.dtype)

    def _gated(self, values, quantized):
        gate = self.gate()
        if gate is None:
            return quantized
        return values + gate * (quantized - values)  # gradient: straight through either way

    def _update(self, values):
        low = tf.minimum(tf.reduce_min(values), 0.0)
        high = tf.maximum(tf.reduce_max(values), 0.0)
        fresh = tf.equal(self.min, self.max)  # never updated: both still 0
        keep = tf.where(fresh, 0.0, EMA_DECAY)
        self.min.assign(keep * self.min + (1.0 - keep) * low)
        self.max.assign(keep * self.max + (1.0 - keep) * high)


def _range_variable(layer, name: str):
    """A float32 scalar non-trainable weight of `layer` (added after it was built)."""
    existing = [w for w in layer.weights if w.name == name]
    if existing:
        return existing[0]
    locked = layer._tracker.locked
    layer._tracker.unlock()
    try:
        return layer.add_weight(shape=(), initializer="zeros", dtype="float32",
                                trainable=False, name=name, aggregation="mean",
                                autocast=False)
    finally:
        if locked:
            layer._tracker.lock()


def quantized_layers(model: keras.Model) -> list:
    """The convolutions of `model` that `attach` quantises."""
    return [layer for layer in all_layers(model)
            if isinstance(layer, conv_lib._FoldsBatchNorm)]


def attach(model: keras.Model, step=None, delay_step: int = 0) -> None:
    """Fake-quantises every convolution of `model` (see the module docstring); again on a
    model already attached it only changes the gate (the range variables are kept).

    step: a variable read at each call (the optimizer's iterations), or None for always on.
    """
    for layer in quantized_layers(model):
        layer._quantizer = Quantizer(layer, step, delay_step)


def is_attached(model: keras.Model) -> bool:
    return any(layer._quantizer is not None for layer in quantized_layers(model))
