"""Helpers for the converter tests: tiny generated images and reading shards back."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from PIL import Image

from deeplab.data import pipeline

VOC_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128] + [7] * (768 - 15)


def random_image(rng, height: int, width: int) -> np.ndarray:
    """uint8 [H, W, 3] noise."""
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def random_label(rng, height: int, width: int, num_classes: int, ignore=None) -> np.ndarray:
    """uint8 [H, W] of values in [0, num_classes), plus `ignore` on a border row if given."""
    label = rng.integers(0, num_classes, (height, width), dtype=np.uint8)
    if ignore is not None:
        label[0] = ignore
    return label


def save(array: np.ndarray, path: str, mode: str | None = None, **kwargs) -> str:
    """Writes `array` with PIL (format from the extension), creating folders; returns path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array, mode).save(path, **kwargs) if mode else \
        Image.fromarray(array).save(path, **kwargs)
    return path


def save_palette_png(label: np.ndarray, path: str) -> str:
    """A VOC-style palette ("P" mode) PNG whose indices are `label`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(label, "P")
    image.putpalette(VOC_PALETTE)
    image.save(path)
    return path


def read_back(dataset_dir: str, split: str) -> dict[str, dict[str, np.ndarray]]:
    """Every example of a split through the eval pipeline (no crop), by filename.

    Values: {"image": uint8 [H, W, 3], "label": uint8 [H, W]}.
    """
    options = pipeline.InputOptions(crop_size=None)
    out = {}
    for batch in pipeline.make_dataset(dataset_dir, split, 1, options, training=False):
        name = batch["filename"].numpy()[0].decode()
        image = batch["image"].numpy()[0]
        assert np.array_equal(image, np.round(image)), "pipeline changed pixel values"
        assert (batch["height"].numpy()[0], batch["width"].numpy()[0]) == image.shape[:2]
        out[name] = {"image": image.astype(np.uint8),
                     "label": batch["label"].numpy()[0, ..., 0].astype(np.uint8)}
    return out


def decode_jpeg_file(path: str) -> np.ndarray:
    """The reference decode of a JPEG file (TF's decoder; PIL's differs by a few levels)."""
    with open(path, "rb") as f:
        return tf.io.decode_jpeg(f.read(), channels=3).numpy()
