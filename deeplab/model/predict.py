"""Prediction: single-scale, multi-scale, flipped and sliding-window, as the original's eval.

One implementation serves predict.py, eval.py, vis.py and export. For images [B, H, W, 3]
(raw pixels 0..255) and scales S, each branch (every scale, and its flipped copy when asked):
  1. resizes the image (bilinear, align_corners) to int((H - 1) s + 1) x int((W - 1) s + 1);
  2. runs the model (image pooling covers the whole feature map);
  3. resizes the logits to scale_dimension(H, max(1, s) / logits_stride) (the original's
     `multi_scale_logits` with one scale), flipping the flipped branch back;
  4. resizes them to (H, W) and takes the softmax.
The probabilities are the mean of the branches' softmaxes; the label is their argmax.
With scales (1.0,) and no flip this is single-scale inference.
"""

from __future__ import annotations

import dataclasses
import itertools

import keras
import numpy as np
import tensorflow as tf

from deeplab.model.backbones import mean_pixel
from deeplab.model.layers import resize_bilinear_align_corners
from deeplab.model.options import ModelOptions


def logits_stride(options: ModelOptions) -> int:
    """Stride of the model's logits: the decoder's, else the backbone's output stride."""
    return options.decoder_output_stride or options.output_stride


def scale_dimension_tf(dim, scale: float):
    """int((dim - 1) * scale + 1) for an int32 tensor `dim`, computed in float32."""
    return tf.cast((tf.cast(dim, tf.float32) - 1.0) * scale + 1.0, tf.int32)


@dataclasses.dataclass(frozen=True)
class InferenceOptions:
    """How to predict.

    scales: image scales (the original's eval_scales / inference_scales).
    flip: also run the left-right flipped image (add_flipped_images).
    window: (height, width) of sliding windows, or None to run whole images.
    window_stride: (dy, dx) between windows; defaults to 2/3 of the window.
    """

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    window: tuple[int, int] | None = None
    window_stride: tuple[int, int] | None = None

    def __post_init__(self):
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"scales={self.scales} must be positive and not empty")
        for name in ("window", "window_stride"):
            value = getattr(self, name)
            if value is not None:
                value = tuple(int(v) for v in value)
                if len(value) != 2 or min(value) < 1:
                    raise ValueError(f"{name}={value} must be two positive integers")
                object.__setattr__(self, name, value)


def _branch_probabilities(model, images, stride: int, scale: float, flip: bool):
    """Softmax [B, H, W, C] float32 of one (scale, flip) branch; see the module docstring."""
    size = tf.shape(images)[1:3]
    x = tf.reverse(images, axis=[2]) if flip else images
    if scale != 1.0:
        x = resize_bilinear_align_corners(x, scale_dimension_tf(size, scale))
    logits = tf.cast(model(x, training=False), tf.float32)
    logits = resize_bilinear_align_corners(
        logits, scale_dimension_tf(size, max(1.0, scale) / stride))
    if flip:
        logits = tf.reverse(logits, axis=[2])
    return tf.nn.softmax(resize_bilinear_align_corners(logits, size))


def multi_scale_probabilities(model: keras.Model, images, stride: int,
                              scales=(1.0,), flip: bool = False):
    """Mean of the branch softmaxes: images [B, H, W, 3] -> float32 [B, H, W, C]."""
    images = tf.convert_to_tensor(images, tf.float32)
    branches = [_branch_probabilities(model, images, stride, s, f)
                for s in scales for f in ((False, True) if flip else (False,))]
    if len(branches) == 1:
        return branches[0]
    return tf.add_n(branches) / float(len(branches))


def window_starts(length: int, window: int, step: int) -> list[int]:
    """Start offsets of windows of `window` covering [0, length); the last one ends flush."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, step))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


class Predictor:
    """A model plus how to run it; callable on raw-pixel images [B, H, W, 3].

    `probabilities(images)` -> float32 [B, H, W, C]; `labels(images)` -> int32 [B, H, W].
    The per-image computation is one tf.function over dynamic shapes, traced once.
    """

    def __init__(self, model: keras.Model, options: ModelOptions,
                 inference: InferenceOptions | None = None):
        self.model = model
        self.options = options
        self.inference = inference or InferenceOptions()
        stride = logits_stride(options)
        scales, flip = self.inference.scales, self.inference.flip
        self._whole = tf.function(
            lambda images: multi_scale_probabilities(model, images, stride, scales, flip),
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
            reduce_retracing=True)

    def probabilities(self, images) -> tf.Tensor:
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape.rank != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be [batch, height, width, 3], got {images.shape}")
        if self.inference.window is None:
            return self._whole(images)
        return self._sliding_window(images)

    def labels(self, images) -> tf.Tensor:
        return tf.argmax(self.probabilities(images), axis=-1, output_type=tf.int32)

    def _sliding_window(self, images) -> tf.Tensor:
        """Averages the probabilities of overlapping windows; pads small images."""
        wh, ww = self.inference.window
        sh, sw = self.inference.window_stride or (max(1, wh * 2 // 3), max(1, ww * 2 // 3))
        _, height, width, _ = images.shape
        pad_h, pad_w = max(0, wh - height), max(0, ww - width)
        paddings = [[0, 0], [0, pad_h], [0, pad_w], [0, 0]]
        outside = 1.0 - tf.pad(tf.ones_like(images[..., :1]), paddings)
        padded = tf.pad(images, paddings) + outside * mean_pixel(self.options.model_variant)
        total, count = None, np.zeros((1, height + pad_h, width + pad_w, 1), np.float32)
        for y, x in itertools.product(window_starts(height + pad_h, wh, sh),
                                      window_starts(width + pad_w, ww, sw)):
            probs = self._whole(padded[:, y:y + wh, x:x + ww]).numpy()
            if total is None:
                total = np.zeros(padded.shape[:3] + (probs.shape[-1],), np.float32)
            total[:, y:y + wh, x:x + ww] += probs
            count[:, y:y + wh, x:x + ww] += 1.0
        return tf.constant((total / count)[:, :height, :width])
