"""SavedModel with two serving signatures, for TF Serving (gRPC or REST) and tf.saved_model.load.

  serving_default: `images` uint8 [B, H, W, 3] (any size, batched) ->
                   `probabilities` float32 [B, H, W, C], `labels` int32 [B, H, W]
  serving_bytes:   `image_bytes` string [B] (encoded JPEG or PNG; the images of one call
                   must share a size) -> the same outputs.

REST: POST /v1/models/<name>:predict with
  {"signature_name": "serving_bytes", "instances": [{"image_bytes": {"b64": "<base64>"}}]}
"""

from __future__ import annotations

import tensorflow as tf

from deeplab.export.contract import ExportModule
from deeplab.utils.quiet import cpp_stderr

DIR_NAME = "saved_model"
DEFAULT_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "serving_bytes"


def decode_images(image_bytes):
    """string [B] of encoded JPEG/PNG -> uint8 [B, H, W, 3] (grey and RGBA become RGB)."""

    def decode(data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return image

    return tf.map_fn(decode, image_bytes,
                     fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))


def signatures(module: ExportModule) -> dict:
    """{signature name: concrete function} for `tf.saved_model.save`."""
    images = tf.function(lambda images: module.outputs(images)).get_concrete_function(
        tf.TensorSpec([None, None, None, 3], tf.uint8, name="images"))
    encoded = tf.function(
        lambda image_bytes: module.outputs(decode_images(image_bytes))).get_concrete_function(
        tf.TensorSpec([None], tf.string, name="image_bytes"))
    return {DEFAULT_SIGNATURE: images, BYTES_SIGNATURE: encoded}


def write_saved_model(module: ExportModule, path: str) -> str:
    """Writes the SavedModel directory `path` (it must not exist yet); returns `path`."""
    with cpp_stderr():  # the writer's C++ INFO lines (Sharding callback duration ...)
        tf.saved_model.save(module, path, signatures=signatures(module))
    return path
