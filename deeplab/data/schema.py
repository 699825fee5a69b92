"""The TFRecord Example format of the original DeepLab: keys, encoding and decoding.

One record holds one image and its class-index label map:

  image/encoded                    bytes   JPEG or PNG image, 8-bit RGB (or grayscale JPEG)
  image/filename                   bytes   name without extension, e.g. b"2007_000032"
  image/format                     bytes   b"jpeg" or b"png"
  image/height, image/width        int64   image size in pixels
  image/channels                   int64   3
  image/segmentation/class/encoded bytes   8-bit single-channel PNG of class indices
  image/segmentation/class/format  bytes   b"png"

Shards are named `<split>-%05d-of-%05d.tfrecord` and read with the glob `<split>-*`.
"""

from __future__ import annotations

import tensorflow as tf

IMAGE_ENCODED = "image/encoded"
IMAGE_FILENAME = "image/filename"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_CHANNELS = "image/channels"
LABEL_ENCODED = "image/segmentation/class/encoded"
LABEL_FORMAT = "image/segmentation/class/format"

IMAGE_FORMATS = ("jpeg", "png")
SHARD_TEMPLATE = "{split}-{index:05d}-of-{count:05d}.tfrecord"


def shard_name(split: str, index: int, count: int) -> str:
    """File name of shard `index` (0-based) of `count` for `split`."""
    return SHARD_TEMPLATE.format(split=split, index=index, count=count)


def shard_pattern(split: str) -> str:
    """Glob (relative to the dataset directory) that reads every shard of `split`."""
    return f"{split}-*"


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def encode_example(
    image_data: bytes,
    image_format: str,
    label_data: bytes,
    filename: str,
    height: int,
    width: int,
) -> bytes:
    """Serialises one image/label pair as a tf.train.Example (the original's keys).

    Args:
      image_data: encoded image file contents (JPEG or PNG, 8-bit).
      image_format: "jpeg" or "png".
      label_data: PNG bytes of an 8-bit single-channel class-index map, same size as the image.
      filename: name stored under image/filename (no directory, no extension).
      height, width: image size in pixels.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    feature = {
        IMAGE_ENCODED: _bytes(image_data),
        IMAGE_FILENAME: _bytes(filename.encode("utf-8")),
        IMAGE_FORMAT: _bytes(image_format.encode("ascii")),
        IMAGE_HEIGHT: _int64(height),
        IMAGE_WIDTH: _int64(width),
        IMAGE_CHANNELS: _int64(3),
        LABEL_ENCODED: _bytes(label_data),
        LABEL_FORMAT: _bytes(b"png"),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


_FEATURES = {
    IMAGE_ENCODED: tf.io.FixedLenFeature((), tf.string),
    IMAGE_FILENAME: tf.io.FixedLenFeature((), tf.string, default_value=""),
    IMAGE_FORMAT: tf.io.FixedLenFeature((), tf.string, default_value="jpeg"),
    IMAGE_HEIGHT: tf.io.FixedLenFeature((), tf.int64, default_value=0),
    IMAGE_WIDTH: tf.io.FixedLenFeature((), tf.int64, default_value=0),
    LABEL_ENCODED: tf.io.FixedLenFeature((), tf.string, default_value=""),
    LABEL_FORMAT: tf.io.FixedLenFeature((), tf.string, default_value="png"),
}


def decode_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses and decodes one serialised Example (graph-safe, for tf.data).

    Returns:
      {"image": uint8 [H, W, 3], "label": uint8 [H, W, 1], "filename": string [],
       "height": int32 [], "width": int32 []} where height/width are the decoded size.
    """
    parsed = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_image(parsed[IMAGE_ENCODED], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    label = tf.io.decode_png(parsed[LABEL_ENCODED], channels=1)
    label.set_shape([None, None, 1])
    shape = tf.shape(image)
    return {
        "image": image,
        "label": label,
        "filename": parsed[IMAGE_FILENAME],
        "height": shape[0],
        "width": shape[1],
    }
