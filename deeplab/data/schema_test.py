import io

import numpy as np
import tensorflow as tf
from PIL import Image

from deeplab.data import schema


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_encode_decode_round_trip_with_original_keys():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    label = rng.integers(0, 21, (5, 7), dtype=np.uint8)
    data = schema.encode_example(_png(image), "png", _png(label), "2007_000032", 5, 7)
    example = tf.train.Example.FromString(data)
    assert set(example.features.feature) == {
        "image/encoded", "image/filename", "image/format", "image/height", "image/width",
        "image/channels", "image/segmentation/class/encoded",
        "image/segmentation/class/format"}
    assert example.features.feature["image/channels"].int64_list.value == [3]
    assert example.features.feature["image/segmentation/class/format"].bytes_list.value == [
        b"png"]
    decoded = schema.decode_example(tf.constant(data))
    np.testing.assert_array_equal(decoded["image"].numpy(), image)
    np.testing.assert_array_equal(decoded["label"].numpy()[..., 0], label)
    assert decoded["filename"].numpy() == b"2007_000032"
    assert (int(decoded["height"]), int(decoded["width"])) == (5, 7)


def test_shard_names():
    assert schema.shard_name("train_aug", 3, 10) == "train_aug-00003-of-00010.tfrecord"
    assert schema.shard_pattern("val") == "val-*"
