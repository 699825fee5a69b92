"""Training logits over an image pyramid: the original's `multi_scale_logits`.

    outputs = pyramid_logits(model, images, scales=(0.5, 1.0), merge_method="max",
                             logits_stride=4, training=True)

For images [B, H, W, 3] and scales S, the logits of every scale are brought to
scale_dimension(H, max(1, max(S)) / logits_stride) x (same for W) (bilinear, align_corners):
- one scale: {"merged_logits": its logits};
- several: {"logits_0.50": ..., "logits_1.00": ..., "merged_logits": their element-wise
  max (merge_method "max") or mean ("avg")}.
A scale s != 1 runs the network on the images resized (bilinear, align_corners) to
scale_dimension(H, s) x scale_dimension(W, s). Each scale is its own call of the network, so
in training every BatchNorm updates its moving statistics once per scale, as in the
original's graph. (Evaluation's multi-scale rules are `deeplab.model.predict`'s.)
"""

from __future__ import annotations

import tensorflow as tf

from deeplab.model.aspp import scale_dimension
from deeplab.model.layers import resize_bilinear_align_corners
from deeplab.model.predict import scale_dimension_tf

MERGED = "merged_logits"
MERGE_METHODS = {"max": tf.reduce_max, "avg": tf.reduce_mean}


def scale_key(scale: float) -> str:
    """The original's name of one scale's logits: logits_0.50."""
    return f"logits_{scale:.2f}"


def scaled_size(size, scale: float):
    """The original's scale_dimension on (H, W): int((d - 1) * scale + 1) each; `size` is
    a pair of ints (Python ints back) or an int32 tensor [2] (an int32 tensor back)."""
    if isinstance(size, tuple):
        return tuple(scale_dimension(d, scale) for d in size)
    return scale_dimension_tf(size, scale)


def _image_size(images):
    static = tuple(images.shape[1:3])
    return static if None not in static else tf.shape(images)[1:3]


def pyramid_logits(model, images, scales=None, merge_method: str = "max",
                   logits_stride: int = 1, training: bool = False) -> dict:
    """{name: logits float32 [B, h, w, C]}; see the module docstring for names and sizes.

    model: raw pixels [B, H, W, 3] -> logits at `logits_stride` (the decoder's stride, else
    the output stride); scales: the image pyramid (None or () means (1.0,)).
    """
    scales = tuple(scales or (1.0,))
    if merge_method not in MERGE_METHODS:
        raise ValueError(f"merge_method={merge_method!r} is not one of {tuple(MERGE_METHODS)}")
    size = _image_size(images)
    logits_size = scaled_size(size, max(1.0, max(scales)) / logits_stride)
    outputs = {}
    for scale in scales:
        scaled = images if scale == 1.0 else resize_bilinear_align_corners(
            images, scaled_size(size, scale))
        logits = model(scaled, training=training)
        if not (isinstance(logits_size, tuple) and tuple(logits.shape[1:3]) == logits_size):
            logits = resize_bilinear_align_corners(logits, logits_size)
        if len(scales) == 1:
            return {MERGED: logits}
        outputs[scale_key(scale)] = logits
    stacked = tf.stack(list(outputs.values()), axis=4)
    outputs[MERGED] = MERGE_METHODS[merge_method](stacked, axis=4)
    return outputs
