"""Preprocessing of one image/label pair, as the original DeepLab's input_preprocess.py.

All functions work on single examples inside tf.data: images are float32 [H, W, 3] raw pixel
values in 0..255, labels int32 [H, W, 1]. Randomness is stateless: every random function
takes a `seed`, an int32/int64 tensor of shape [2], so a pipeline is reproducible under a
seed whatever its parallelism.

Bilinear resizes use align_corners=True and labels are resized nearest-neighbour, as in the
original. Padding goes to the bottom and right, with the mean pixel for images and the
ignore label for labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

PROB_OF_FLIP = 0.5


def random_scale(seed, min_scale: float, max_scale: float, step_size: float) -> tf.Tensor:
    """A random scale factor (float32 scalar).

    One of the values min, min + step, ..., max with equal probability when step_size > 0,
    uniform in [min, max) when step_size == 0, and min when min == max.
    """
    if min_scale < 0 or min_scale > max_scale:
        raise ValueError(f"need 0 <= min_scale_factor <= max_scale_factor, "
                         f"got {min_scale}, {max_scale}")
    if min_scale == max_scale:
        return tf.constant(min_scale, tf.float32)
    if step_size == 0:
        return tf.random.stateless_uniform([], seed, min_scale, max_scale, tf.float32)
    num_steps = int((max_scale - min_scale) / step_size + 1)
    scales = tf.linspace(tf.constant(min_scale, tf.float32), max_scale, num_steps)
    index = tf.random.stateless_uniform([], seed, 0, num_steps, tf.int32)
    return scales[index]


def resize_pair(image: tf.Tensor, label: tf.Tensor | None, size) -> tuple:
    """Resizes image (bilinear) and label (nearest), both with align_corners=True.

    Args:
      image: float32 [H, W, 3]. label: int32 [H, W, 1] or None. size: int32 [2] (h, w).
    """
    image = tf.raw_ops.ResizeBilinear(images=image[None], size=size, align_corners=True)[0]
    if label is not None:
        label = tf.raw_ops.ResizeNearestNeighbor(
            images=label[None], size=size, align_corners=True)[0]
    return image, label


def scale_pair(image: tf.Tensor, label: tf.Tensor | None, scale: tf.Tensor) -> tuple:
    """Scales both to int(size * scale) per side; a scale of 1 leaves them untouched."""
    size = tf.shape(image)[:2]
    new_size = tf.cast(tf.cast(size, tf.float32) * scale, tf.int32)
    if label is None:
        return tf.cond(tf.equal(scale, 1.0), lambda: image,
                       lambda: resize_pair(image, None, new_size)[0]), None
    return tf.cond(tf.equal(scale, 1.0), lambda: (image, label),
                   lambda: resize_pair(image, label, new_size))


def resize_to_range(
    image: tf.Tensor,
    label: tf.Tensor | None,
    min_size: int | None,
    max_size: int | None = None,
    factor: int | None = None,
    keep_aspect_ratio: bool = True,
) -> tuple:
    """Resizes so the short side is `min_size` unless the long side would pass `max_size`.

    As the original's resize_to_range: the size is ceil(side * min_size / short side); if its
    long side exceeds max_size, ceil(side * max_size / long side) instead. With `factor` the
    sides are raised to a multiple of factor plus one (max_size first lowered to such a
    value). Without keep_aspect_ratio the result is square, of the larger computed side.
    """
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    if min_size is None:
        min_size = max_size
    min_size_f = tf.constant(float(min_size), tf.float32)
    new_size = tf.cast(tf.math.ceil(shape * min_size_f / tf.reduce_min(shape)), tf.int32)
    if max_size is not None:
        max_f = float(max_size)
        if factor is not None:
            max_f = max_f + (factor - (max_f - 1) % factor) % factor - factor
        small = tf.cast(tf.math.ceil(shape * max_f / tf.reduce_max(shape)), tf.int32)
        too_big = tf.cast(tf.reduce_max(new_size), tf.float32) > max_f
        new_size = tf.where(too_big, small, new_size)
    if factor is not None:
        new_size += (factor - (new_size - 1) % factor) % factor
    if not keep_aspect_ratio:
        side = tf.reduce_max(new_size)
        new_size = tf.stack([side, side])
    return resize_pair(image, label, new_size)


def pad_to_size(image: tf.Tensor, height, width, pad_value: Sequence[float] | float):
    """Pads bottom/right to at least (height, width) with `pad_value` (per channel).

    Values inside the original area are kept exactly (no subtract-and-add round trip).
    Works for images (float32 [H, W, 3]) and labels (int32 [H, W, 1]).
    """
    size = tf.shape(image)[:2]
    paddings = [[0, tf.maximum(height - size[0], 0)], [0, tf.maximum(width - size[1], 0)], [0, 0]]
    if image.dtype.is_integer:
        return tf.pad(image, paddings, constant_values=tf.cast(pad_value, image.dtype))
    inside = tf.pad(tf.ones_like(image[..., :1]), paddings)
    pad = tf.reshape(tf.constant(pad_value, image.dtype), [1, 1, -1])
    return tf.pad(image, paddings) + (1 - inside) * pad


def random_crop(image: tf.Tensor, label: tf.Tensor, height: int, width: int, seed) -> tuple:
    """Crops the same random (height, width) window of both; they must be at least that big.

    Every offset in [0, H - height] x [0, W - width] has equal probability.
    """
    size = tf.shape(image)[:2]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    top = tf.random.stateless_uniform([], seeds[0], 0, size[0] - height + 1, tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], 0, size[1] - width + 1, tf.int32)
    image = tf.slice(image, [top, left, 0], [height, width, -1])
    label = tf.slice(label, [top, left, 0], [height, width, -1])
    return image, label


def random_flip(image: tf.Tensor, label: tf.Tensor, seed, prob: float = PROB_OF_FLIP) -> tuple:
    """Flips both left-right together with probability `prob`."""
    flip = tf.random.stateless_uniform([], seed) <= prob
    return tf.cond(flip, lambda: (tf.reverse(image, [1]), tf.reverse(label, [1])),
                   lambda: (image, label))


def preprocess_for_train(image, label, options, seed) -> tuple:
    """Training augmentation: [resize to range], random scale, pad, random crop, flip.

    Args:
      image: uint8 or float [H, W, 3]. label: uint8 or int [H, W, 1].
      options: a deeplab.data.pipeline.InputOptions (crop_size must be set).
      seed: int tensor [2].
    Returns:
      (image float32 [crop_h, crop_w, 3] in 0..255, label int32 [crop_h, crop_w, 1],
       size int32 [2]: (height, width) after the optional resize, before scaling).
    """
    crop_h, crop_w = options.crop_size
    image, label = tf.cast(image, tf.float32), tf.cast(label, tf.int32)
    image, label = maybe_resize_to_range(image, label, options)
    size = tf.shape(image)[:2]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    scale = random_scale(seeds[0], options.min_scale_factor, options.max_scale_factor,
                         options.scale_factor_step_size)
    image, label = scale_pair(image, label, scale)
    image = pad_to_size(image, crop_h, crop_w, options.mean_pixel)
    label = pad_to_size(label, crop_h, crop_w, options.ignore_label)
    image, label = random_crop(image, label, crop_h, crop_w, seeds[1])
    if options.flip:
        image, label = random_flip(image, label, seeds[2])
    image.set_shape([crop_h, crop_w, 3])
    label.set_shape([crop_h, crop_w, 1])
    return image, label, size


def maybe_resize_to_range(image, label, options) -> tuple:
    """Applies resize_to_range when options.min_resize_value or max_resize_value is set."""
    if not (options.min_resize_value or options.max_resize_value):
        return image, label
    return resize_to_range(image, label, options.min_resize_value, options.max_resize_value,
                           options.resize_factor, options.keep_aspect_ratio)


def preprocess_for_eval(image, label, options, filename) -> tuple:
    """Evaluation: [resize to range], then pad bottom/right to options.crop_size if set.

    An image larger than the eval crop fails with an InvalidArgumentError naming the file
    and both sizes. Returns (image float32 [h, w, 3], label int32 [h, w, 1], size int32 [2])
    where (h, w) is the crop, or the (resized) image size when crop_size is None, and size is
    the (resized) image size before padding.
    """
    image, label = tf.cast(image, tf.float32), tf.cast(label, tf.int32)
    image, label = maybe_resize_to_range(image, label, options)
    size = tf.shape(image)[:2]
    if options.crop_size is None:
        return image, label, size
    crop_h, crop_w = options.crop_size
    fits = tf.logical_and(size[0] <= crop_h, size[1] <= crop_w)
    message = tf.strings.format(
        "image {} is {}x{} (HxW), larger than the eval crop {}x{}: raise the eval crop size "
        "or set a max resize value", (filename, size[0], size[1], crop_h, crop_w))
    with tf.control_dependencies([tf.debugging.Assert(fits, [message])]):
        image = pad_to_size(image, crop_h, crop_w, options.mean_pixel)
    label = pad_to_size(label, crop_h, crop_w, options.ignore_label)
    image.set_shape([crop_h, crop_w, 3])
    label.set_shape([crop_h, crop_w, 1])
    return image, label, size
