"""Prediction: single-scale, multi-scale, flipped and sliding-window, as the original's eval.

One implementation serves predict.py, eval.py, vis.py and export. For images [B, H, W, 3]
(raw pixels 0..255) and scales S, each branch (every scale, and its flipped copy when asked):
  1. resizes the image (bilinear, align_corners) to int((H - 1) s + 1) x int((W - 1) s + 1);
  2. runs the model (image pooling covers the whole feature map);
  3. resizes the logits to scale_dimension(H, max(1, s) / logits_stride) (the original's
     `multi_scale_logits` with one scale), flipping the flipped branch back;
  4. resizes them to (H, W) and takes the softmax.
The probabilities are the mean of the branches' softmaxes; the label is their argmax.
With scales (1.0,) and no flip this is single-scale inference. There, with
`prediction_with_upsampled_logits=False` (the original's option), step 4 takes the softmax at
the logits' size and resizes it nearest-neighbour (align_corners) instead: the labels are
then exactly the original's, the argmax at the logits' stride upsampled as labels.

Bounded memory: an image of more than `max_pixels` pixels (and every image when a window is
given) runs as overlapping windows whose probabilities are averaged. The windows are
processed one row of windows at a time and finished rows are handed on (`Predictor.bands`),
so besides the image itself memory holds one window's activations and one band of
[window height, W, C] probabilities, whatever the image size. An image no larger than
`max_pixels` runs whole, exactly as without the limit.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from deeplab.model import folded_conv
from deeplab.model.backbones import mean_pixel
from deeplab.model.layers import resize_bilinear_align_corners
from deeplab.model.options import DEFAULT_MAX_PIXELS, ModelOptions


def logits_stride(options: ModelOptions) -> int:
    """Stride of the model's logits: the decoder's, else the backbone's output stride."""
    return options.decoder_output_stride or options.output_stride


# Images with more pixels than DEFAULT_MAX_PIXELS (in deeplab.model.options) run as windows;
# the automatic windows are at most AUTO_WINDOW pixels high and wide.
AUTO_WINDOW = 1025


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
    max_pixels: without `window`, images with more pixels (H * W) run as windows of
      `auto_window(max_pixels)`; None runs every image whole whatever its size.
    """

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    window: tuple[int, int] | None = None
    window_stride: tuple[int, int] | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS

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
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ValueError(f"max_pixels={self.max_pixels} must be positive (or None)")


def auto_window(max_pixels: int) -> int:
    """Side of the square windows for images beyond `max_pixels`: AUTO_WINDOW, or less so
    that one window has at most `max_pixels` pixels."""
    return max(1, min(AUTO_WINDOW, math.isqrt(max_pixels)))


def _default_stride(window):
    return tuple(max(1, w * 2 // 3) for w in window)


def resize_nearest_align_corners(images, size):
    """Nearest-neighbour resize with align_corners=True (the original's label resize).

    images: [B, h, w, C]; size: (height, width). Returns [B, height, width, C], same dtype.
    """
    return tf.raw_ops.ResizeNearestNeighbor(images=images, size=tf.cast(size, tf.int32),
                                            align_corners=True, half_pixel_centers=False)


def _branch_probabilities(model, images, stride: int, scale: float, flip: bool,
                          upsample_logits: bool = True):
    """Softmax [B, H, W, C] float32 of one (scale, flip) branch; see the module docstring.

    upsample_logits False: the softmax at the logits' size, resized nearest-neighbour."""
    size = tf.shape(images)[1:3]
    x = tf.reverse(images, axis=[2]) if flip else images
    if scale != 1.0:
        x = resize_bilinear_align_corners(x, scale_dimension_tf(size, scale))
    logits = tf.cast(model(x, training=False), tf.float32)
    logits = resize_bilinear_align_corners(
        logits, scale_dimension_tf(size, max(1.0, scale) / stride))
    if flip:
        logits = tf.reverse(logits, axis=[2])
    if not upsample_logits:
        return resize_nearest_align_corners(tf.nn.softmax(logits), size)
    return tf.nn.softmax(resize_bilinear_align_corners(logits, size))


def multi_scale_probabilities(model: keras.Model, images, stride: int,
                              scales=(1.0,), flip: bool = False,
                              upsample_logits: bool = True):
    """Mean of the branch softmaxes: images [B, H, W, 3] -> float32 [B, H, W, C].

    upsample_logits: False resizes the single-scale softmax nearest-neighbour (see the
    module docstring); multi-scale or flipped inference always upsamples the logits."""
    images = tf.convert_to_tensor(images, tf.float32)
    single = tuple(scales) == (1.0,) and not flip
    branches = [_branch_probabilities(model, images, stride, s, f,
                                      upsample_logits or not single)
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


def inference_function(model: keras.Model, compute=None):
    """A function (to wrap in tf.function) computing `compute(model, ...)` (default:
    `model(images, training=False)`) with every BatchNorm baked into its convolution's
    weights, in the compute dtype, as they are now (`deeplab.model.folded_conv.baked_variables`):
    no fold and no weight cast per call. Returns (function, baked variables); re-assign them with
    `rebake(model, variables)` after the model's weights change."""
    compute = compute or (lambda m, images: m(images, training=False))
    folded = folded_conv.baked_variables(model, compute_dtype=True)

    def run(*args):
        with folded_conv.baked(model, folded):
            return compute(model, *args)

    return run, folded


def rebake(model: keras.Model, folded: dict) -> None:
    """Re-assigns the variables of `inference_function` from the model's current weights."""
    for name, (kernel, bias) in folded_conv.bake_batch_norm(model).items():
        folded[name][0].assign(tf.cast(kernel, folded[name][0].dtype))
        folded[name][1].assign(tf.cast(bias, folded[name][1].dtype))


class Predictor:
    """A model plus how to run it; callable on raw-pixel images [B, H, W, 3].

    `probabilities(images)` -> float32 [B, H, W, C]; `labels(images)` -> int32 [B, H, W].
    The per-image computation is one tf.function over dynamic shapes, traced once, on the
    weights the model has when the Predictor is made (`refresh()` re-reads them).
    """

    def __init__(self, model: keras.Model, options: ModelOptions,
                 inference: InferenceOptions | None = None):
        self.model = model
        self.options = options
        self.inference = inference or InferenceOptions()
        stride = logits_stride(options)
        scales, flip = self.inference.scales, self.inference.flip
        upsample = options.prediction_with_upsampled_logits
        run, self._folded = inference_function(
            model, lambda m, images: multi_scale_probabilities(m, images, stride, scales, flip,
                                                               upsample))
        self._whole = tf.function(
            run, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
            reduce_retracing=True)

    def refresh(self) -> None:
        """Takes the model's current weights (after a restore or a training step)."""
        rebake(self.model, self._folded)

    def window_for(self, height: int, width: int):
        """(window, stride) for an image of height x width, or None to run it whole.

        An explicit window applies to every image (smaller ones are padded to it); the
        automatic one (beyond max_pixels) is clipped to the image, never padded.
        """
        if self.inference.window is not None:
            return self.inference.window, (self.inference.window_stride
                                           or _default_stride(self.inference.window))
        limit = self.inference.max_pixels
        if limit is None or height * width <= limit:
            return None
        side = auto_window(limit)
        window = (min(side, height), min(side, width))
        return window, self.inference.window_stride or _default_stride((side, side))

    def bands(self, images):
        """Probabilities in horizontal bands: yields (y0, float32 numpy [B, rows, W, C]) for
        consecutive row ranges covering images [B, H, W, 3] (numpy or tensor, raw pixels).

        Whole images give one band; windowed ones one band per row of windows, so memory
        stays bounded (see the module docstring). A band is a view into a reused buffer:
        valid until the next band is requested (copy it to keep it). uint8 images are
        converted window by window.
        """
        if not hasattr(images, "shape"):
            images = np.asarray(images, np.float32)
        shape = tuple(images.shape)
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"images must be [batch, height, width, 3], got {list(shape)}")
        height, width = int(shape[1]), int(shape[2])
        plan = self.window_for(height, width)
        if plan is None:
            yield 0, self._whole(_as_float32(images)).numpy()
            return
        window, stride = plan
        pad = (max(0, window[0] - height), max(0, window[1] - width))
        if any(pad):  # an explicit window larger than the image: pad with the mean pixel
            padded = np.empty((shape[0], height + pad[0], width + pad[1], 3), np.float32)
            padded[...] = np.asarray(mean_pixel(self.options.model_variant), np.float32)
            padded[:, :height, :width] = np.asarray(images, np.float32)
            images = padded
        for y0, band in window_bands(self._whole, images, window, stride):
            if y0 < height:
                yield y0, band[:, :height - y0, :width]

    def probabilities(self, images) -> tf.Tensor:
        """float32 [B, H, W, C] for raw-pixel images [B, H, W, 3]."""
        bands = [band.copy() for _, band in self.bands(images)]
        return tf.constant(bands[0] if len(bands) == 1 else np.concatenate(bands, axis=1))

    def labels(self, images) -> tf.Tensor:
        """int32 [B, H, W]; never holds the whole probability map of a windowed image."""
        bands = [band.argmax(-1).astype(np.int32) for _, band in self.bands(images)]
        return tf.constant(np.concatenate(bands, axis=1))


def window_bands(run_window, images, window, stride):
    """Sliding-window probabilities of images [B, H, W, 3] with H, W >= window, one band of
    finished rows at a time: yields (y0, float32 numpy [B, rows, W, C]), a view into the
    buffer that the next step overwrites.

    run_window: float32 [B, h, w, 3] -> probabilities [B, h, w, C]. Windows start at
    `window_starts` offsets; overlapping windows' probabilities are averaged. Rows above the
    next row of windows are final once the current row is done, so the buffers hold only
    window[0] rows.
    """
    (wh, ww), (sh, sw) = window, stride
    batch, height, width = (int(d) for d in images.shape[:3])
    total = count = None
    base = 0  # image row of the buffers' first row
    for y in window_starts(height, wh, sh):
        if total is not None and y > base:
            done = y - base
            yield base, np.divide(total[:, :done], count[:, :done], out=total[:, :done])
            for buffer in (total, count):  # move the unfinished rows up, in place
                buffer[:, :wh - done] = buffer[:, done:]
                buffer[:, wh - done:] = 0.0
            base = y
        for x in window_starts(width, ww, sw):
            crop = _as_float32(images[:, y:y + wh, x:x + ww])
            probs = np.asarray(run_window(crop))
            if total is None:
                total = np.zeros((batch, wh, width, probs.shape[-1]), np.float32)
                count = np.zeros((1, wh, width, 1), np.float32)
            total[:, :, x:x + ww] += probs
            count[:, :, x:x + ww] += 1.0
    yield base, np.divide(total, count, out=total)


def _as_float32(images) -> tf.Tensor:
    """numpy or tensor images of any number type -> float32 tensor."""
    return tf.cast(tf.convert_to_tensor(images), tf.float32)
