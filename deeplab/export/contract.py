"""The exportable computation: uint8 images of any size -> probabilities and labels.

Every export format (frozen graph, SavedModel, ONNX, TFLite) is traced from `ExportModule`,
so all of them compute the same thing, the original export's contract:

  1. images uint8 [B, H, W, 3] are cast to float32 raw pixels;
  2. an image larger than the crop in either dimension is shrunk (bilinear, align_corners,
     aspect ratio kept) to fit inside it; smaller images are left as they are. (The original
     rejected such images unless --max_resize_value was set; we always fit them.)
  3. the image is padded bottom/right to the crop with the model's mean pixel (127.5, or the
     ImageNet mean RGB for plain resnet_v1), as the original's preprocessing at eval time, so
     the network always sees a [B, crop_h, crop_w, 3] tensor with a static shape;
  4. `deeplab.model.predict.multi_scale_probabilities` runs the network (scales and flip baked
     in) and returns the mean softmax over branches at the crop size;
  5. the valid (unpadded) region is sliced out and, for a shrunk image, resized back
     (bilinear, align_corners) to (H, W);
  6. labels are the argmax of those probabilities. (The original resized its labels with
     nearest neighbour; resizing probabilities first keeps both outputs consistent.)
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from deeplab.model import folded_conv
from deeplab.model.backbones import mean_pixel
from deeplab.model.layers import resize_bilinear_align_corners
from deeplab.model.options import ModelOptions
from deeplab.model.predict import logits_stride, multi_scale_probabilities

INPUT_NAME = "ImageTensor"
LABELS_NAME = "SemanticPredictions"
PROBABILITIES_NAME = "SemanticProbabilities"


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What the exported graph does around the network.

    crop_size: (height, width) every image is padded to (and shrunk to fit into).
    scales: inference scales baked into the graph (the original's inference_scales).
    flip: also run the left-right flipped image (add_flipped_images).
    """

    crop_size: tuple[int, int] = (513, 513)
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    def __post_init__(self):
        object.__setattr__(self, "crop_size", tuple(int(v) for v in self.crop_size))
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if len(self.crop_size) != 2 or min(self.crop_size) < 1:
            raise ValueError(f"crop_size={list(self.crop_size)} must be two positive integers "
                             "(height, width)")
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"inference_scales={list(self.scales)} must be positive")

    def to_dict(self) -> dict:
        return {"crop_size": list(self.crop_size), "inference_scales": list(self.scales),
                "add_flipped_images": self.flip}


def fit_size(size, crop_size):
    """int32 [2]: `size` (int32 [2]) shrunk to fit inside `crop_size`, aspect ratio kept.

    Sizes that already fit are returned unchanged; each side is at least 1. Integer
    arithmetic only (the limiting side becomes the crop's, the other is rounded half up),
    so quantising converters (TFLite int8) leave the shape computation exact.
    """
    height, width = size[0], size[1]
    crop_h, crop_w = crop_size
    fits = (height <= crop_h) & (width <= crop_w)
    by_height = tf.stack([tf.constant(crop_h), (2 * width * crop_h + height) // (2 * height)])
    by_width = tf.stack([(2 * height * crop_w + width) // (2 * width), tf.constant(crop_w)])
    fitted = tf.where(fits, size, tf.where(crop_h * width <= crop_w * height, by_height,
                                           by_width))
    return tf.clip_by_value(fitted, 1, tf.constant(crop_size, tf.int32))


def pad_to_crop(images, crop_size, mean):
    """float32 [B, h, w, 3] with h, w <= crop -> [B, crop_h, crop_w, 3], padded
    bottom/right with `mean` (RGB)."""
    size = tf.shape(images)[1:3]
    pad = tf.constant(crop_size, tf.int32) - size
    mean = tf.constant(mean, tf.float32)
    padded = tf.pad(images - mean, [[0, 0], [0, pad[0]], [0, pad[1]], [0, 0]]) + mean
    # A reshape (not ensure_shape, which TFLite lacks) makes the crop size static for every
    # converter, so the network itself is traced with fixed spatial dimensions.
    return tf.reshape(padded, [-1, crop_size[0], crop_size[1], 3])


def export_probabilities(model: keras.Model, options: ModelOptions, export: ExportOptions,
                         images):
    """images uint8 or float [B, H, W, 3] raw pixels -> float32 probabilities [B, H, W, C].

    See the module docstring for the steps; the network runs on [B, crop_h, crop_w, 3].
    """
    images = tf.cast(images, tf.float32)
    size = tf.shape(images)[1:3]
    fitted = fit_size(size, export.crop_size)
    shrunk = resize_bilinear_align_corners(images, fitted)
    padded = pad_to_crop(shrunk, export.crop_size, mean_pixel(options.model_variant))
    probabilities = multi_scale_probabilities(model, padded, logits_stride(options),
                                              export.scales, export.flip,
                                              options.prediction_with_upsampled_logits)
    valid = probabilities[:, :fitted[0], :fitted[1], :]
    return resize_bilinear_align_corners(valid, size)


def labels_from(probabilities):
    """float32 [B, H, W, C] -> int32 label map [B, H, W]."""
    return tf.argmax(probabilities, axis=-1, output_type=tf.int32)


class ExportModule(tf.Module):
    """The Keras model plus the export contract, as tf.functions that every format traces.

    `outputs(images)`: images uint8 [B, H, W, 3] -> {"probabilities": float32 [B, H, W, C],
    "labels": int32 [B, H, W]}.

    Every BatchNorm that follows a convolution is folded into that convolution's weights
    once, here (`deeplab.model.folded_conv.bake_batch_norm`, from the weights the model holds now),
    and the traced functions read those folded weights: no per-call multiply in any format.
    `folded` holds them as non-trainable variables (so a SavedModel stores them once).
    """

    def __init__(self, model: keras.Model, options: ModelOptions, export: ExportOptions):
        super().__init__(name="deeplab_export")
        self.model = model
        self.options = options
        self.export = export
        self.num_classes = options.num_classes
        self.folded = folded_conv.baked_variables(model)

    def outputs(self, images) -> dict:
        with folded_conv.baked(self.model, self.folded):
            probabilities = export_probabilities(self.model, self.options, self.export, images)
        return {"probabilities": probabilities, "labels": labels_from(probabilities)}

    def function(self, batch: int | None = None, height: int | None = None,
                 width: int | None = None, name: str = INPUT_NAME):
        """A concrete function on uint8 [batch, height, width, 3] (None = dynamic)."""
        spec = tf.TensorSpec([batch, height, width, 3], tf.uint8, name=name)
        return tf.function(self.outputs).get_concrete_function(spec)

    def original_interface(self):
        """Concrete function with the original's names: `ImageTensor` uint8 [1, ?, ?, 3] ->
        `SemanticPredictions` int32 [1, H, W], `SemanticProbabilities` float32 [1, H, W, C]."""

        def call(images):
            outputs = self.outputs(images)
            return {LABELS_NAME: tf.identity(outputs["labels"], name=LABELS_NAME),
                    PROBABILITIES_NAME: tf.identity(outputs["probabilities"],
                                                    name=PROBABILITIES_NAME)}

        spec = tf.TensorSpec([1, None, None, 3], tf.uint8, name=INPUT_NAME)
        return tf.function(call).get_concrete_function(spec)
