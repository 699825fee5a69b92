"""Activations of the original's MobileNetV3 and squeeze-excite heads, with its constants,
and the clip of its bounded-activation (quantisation-friendly) networks.

The original computes hard-swish as `(x * relu6(x + 3)) * float32(1/6)` but its gates
(squeeze-excite in MobileNetV3, the q-sigmoid image-pooling gate of the DeepLab head) as
`relu6(x + 3) * float32(0.16667)`: 0.16666999, not 1/6. Using 1/6 in the gates moves
MobileNetV3 logits by ~3e-3 std, so both constants are kept as the original has them.
Registered as Keras serializables so saved `.keras` models load them by name.
"""

from __future__ import annotations

import keras
import tensorflow as tf

HARD_SWISH_SCALE = 1.0 / 6.0
GATE_SCALE = 0.16667


@keras.saving.register_keras_serializable(package="deeplab")
def hard_swish(x):
    """x * relu6(x + 3) / 6, elementwise; same shape and dtype as x."""
    return (x * tf.nn.relu6(x + 3.0)) * tf.cast(HARD_SWISH_SCALE, x.dtype)


@keras.saving.register_keras_serializable(package="deeplab")
def hard_sigmoid(x):
    """relu6(x + 3) * 0.16667 (the original's `q_sigmoid` / SE gate), elementwise."""
    return tf.nn.relu6(x + 3.0) * tf.cast(GATE_SCALE, x.dtype)


CLIP_CAP = 6.0


@keras.saving.register_keras_serializable(package="deeplab")
def clip6(x):
    """clip(x, -6, 6), elementwise: what `--use_bounded_activation` puts where the original
    has no activation (Xception's separable convs and both inputs of its residual adds)."""
    return tf.clip_by_value(x, tf.cast(-CLIP_CAP, x.dtype), tf.cast(CLIP_CAP, x.dtype))


def relu_or_relu6(bounded: bool) -> str:
    """The Keras activation of the original's ReLUs: relu6 under `use_bounded_activation`."""
    return "relu6" if bounded else "relu"
