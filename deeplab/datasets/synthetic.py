"""The built-in synthetic dataset: small textured shapes on cluttered backgrounds.

Five object classes, each a hue plus a texture (red horizontal stripes, green checkerboard,
blue dots, yellow vertical stripes, magenta diagonal stripes), drawn as random circles,
ellipses, rectangles and triangles (shape says nothing about class) over a low-saturation
background with smooth shading, grey clutter and pixel noise. As in VOC, a 2-pixel band
along every object boundary is labelled 255 (ignore). Class is decidable from local colour
and texture, so a small DeepLab learns it to high mIoU in minutes on a CPU.

Generation is deterministic in (seed, split, index) and takes a few seconds:

  python -m deeplab.datasets.synthetic --output_dir=/tmp/synthetic
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os

import numpy as np
from scipy import ndimage

from deeplab.data import descriptors
from deeplab.datasets import build_data
from deeplab.utils.atomic import write_json_atomically

GENERATOR_VERSION = 1
IGNORE_LABEL = 255
NUM_CLASSES = descriptors.get_descriptor("synthetic").num_classes
DEFAULT_NUM_TRAIN = 320
DEFAULT_NUM_VAL = 80
DEFAULT_IMAGE_SIZE = (96, 96)
PARAMS_FILE = "synthetic.json"
_SPLIT_IDS = {"train": 0, "val": 1}
_HUES = (0.0, 1 / 3, 0.64, 0.15, 0.83)  # class 1..5: red, green, blue, yellow, magenta
_SHAPES = ("circle", "ellipse", "rectangle", "triangle")


def _hsv_to_rgb(h, s, v) -> np.ndarray:
    """Vectorised HSV -> RGB, all in [0, 1]; returns [..., 3]."""
    h = np.asarray(h) % 1.0
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(np.broadcast(h, s, v).shape + (3,))
    for k, (r, g, b) in enumerate(table):
        mask = i == k
        for c, value in enumerate((r, g, b)):
            out[..., c] = np.where(mask, value, out[..., c])
    return out


def _texture(cls: int, yy, xx, rng) -> np.ndarray:
    """Brightness modulation in [-1, 1] of class `cls` at pixel coordinates (yy, xx)."""
    period = rng.uniform(5.0, 8.0)
    phase = rng.uniform(0, 2 * np.pi)
    if cls == 1:
        return np.sign(np.sin(2 * np.pi * yy / period + phase))
    if cls == 2:
        return np.sign(np.sin(np.pi * yy / period + phase) * np.sin(np.pi * xx / period))
    if cls == 3:
        dots = np.sin(2 * np.pi * yy / period + phase) * np.sin(2 * np.pi * xx / period)
        return np.where(dots > 0.5, 1.0, -0.4)
    if cls == 4:
        return np.sign(np.sin(2 * np.pi * xx / period + phase))
    return np.sign(np.sin(2 * np.pi * (xx + yy) / (period * 1.4) + phase))


def _shape_mask(shape: str, yy, xx, cy, cx, r, rng) -> np.ndarray:
    if shape == "circle":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if shape == "ellipse":
        a, b, t = r, r * rng.uniform(0.5, 0.9), rng.uniform(0, np.pi)
        u = (yy - cy) * np.cos(t) + (xx - cx) * np.sin(t)
        w = -(yy - cy) * np.sin(t) + (xx - cx) * np.cos(t)
        return (u / a) ** 2 + (w / b) ** 2 <= 1
    if shape == "rectangle":
        h, w = r * rng.uniform(0.6, 1.0), r * rng.uniform(0.6, 1.0)
        return (np.abs(yy - cy) <= h) & (np.abs(xx - cx) <= w)
    angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
    py, px = cy + r * np.sin(angles), cx + r * np.cos(angles)
    inside = np.ones_like(yy, dtype=bool)
    for k in range(3):
        y0, x0, y1, x1 = py[k], px[k], py[(k + 1) % 3], px[(k + 1) % 3]
        inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
    return inside


def _background(height: int, width: int, rng) -> np.ndarray:
    """Low-saturation shaded clutter, float [H, W, 3] in 0..1."""
    coarse = rng.uniform(-1, 1, (6, 6))
    shade = ndimage.zoom(coarse, (height / 6, width / 6), order=1)[:height, :width]
    base = rng.uniform(0.3, 0.7) + 0.15 * shade
    tint = rng.uniform(-0.04, 0.04, 3)
    image = base[..., None] + tint
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    for _ in range(rng.integers(2, 6)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(1, max(2, min(height, width) / 5))
        mask = _shape_mask(str(rng.choice(_SHAPES)), yy, xx, cy, cx, r, rng)
        image[mask] = rng.uniform(0.1, 0.9) + tint
    return image


def generate_example(index: int, split: str, image_size=DEFAULT_IMAGE_SIZE, seed: int = 0):
    """One synthetic pair: (image uint8 [H, W, 3], label uint8 [H, W]).

    Labels: 0 background, 1..5 object classes, 255 on a 2-pixel band along boundaries.
    """
    rng = np.random.default_rng([seed, _SPLIT_IDS.get(split, 2), index])
    height, width = image_size
    image = _background(height, width, rng)
    label = np.zeros((height, width), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    side = min(height, width)
    for _ in range(rng.integers(1, 4)):
        cls = int(rng.integers(1, NUM_CLASSES))
        r = rng.uniform(0.14, 0.3) * side
        cy, cx = rng.uniform(0.1, 0.9) * height, rng.uniform(0.1, 0.9) * width
        mask = _shape_mask(str(rng.choice(_SHAPES)), yy, xx, cy, cx, r, rng)
        hue = _HUES[cls - 1] + rng.uniform(-0.03, 0.03)
        value = rng.uniform(0.55, 0.9) * (1 + 0.3 * _texture(cls, yy, xx, rng))
        colour = _hsv_to_rgb(hue, rng.uniform(0.65, 1.0), np.clip(value, 0, 1))
        image[mask] = colour[mask]
        label[mask] = cls
    image += rng.normal(0, 0.03, image.shape)
    edges = ndimage.maximum_filter(label, 3) != ndimage.minimum_filter(label, 3)
    label[edges] = IGNORE_LABEL
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), label


def _load(index: int, split: str, image_size, seed: int) -> build_data.EncodedPair:
    image, label = generate_example(index, split, image_size, seed)
    height, width = label.shape
    return build_data.EncodedPair(f"{split}_{index:05d}", build_data.encode_png(image), "png",
                                  build_data.encode_png(label), height, width)


def write_synthetic_dataset(
    output_dir: str,
    num_train: int = DEFAULT_NUM_TRAIN,
    num_val: int = DEFAULT_NUM_VAL,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
    num_shards: int = 2,
    progress: bool = False,
) -> descriptors.DatasetDescriptor:
    """Writes train/val shards, `dataset.json` and `synthetic.json`; returns the descriptor."""
    counts, stats = {}, {}
    registered = descriptors.get_descriptor("synthetic")
    for split, count in (("train", num_train), ("val", num_val)):
        load = functools.partial(_load, split=split, image_size=tuple(image_size), seed=seed)
        result = build_data.write_split(output_dir, split, range(count), load, num_shards,
                                        progress=progress)
        counts[split] = result.written
        stats[split] = build_data.class_statistics(result.histogram, registered.num_classes,
                                                   registered.ignore_label)
    descriptor = dataclasses.replace(registered, splits=counts, class_statistics=stats)
    descriptors.write_descriptor(output_dir, descriptor)
    write_json_atomically(os.path.join(output_dir, PARAMS_FILE),
                                  _params(num_train, num_val, image_size, seed))
    return descriptor


def _params(num_train, num_val, image_size, seed) -> dict:
    return {"version": GENERATOR_VERSION, "num_train": num_train, "num_val": num_val,
            "image_size": list(image_size), "seed": seed}


def default_dataset_dir() -> str:
    """$DEEPLAB_SYNTHETIC_DIR, else ~/.cache/deeplab_tf2/synthetic-v<version>."""
    return os.environ.get("DEEPLAB_SYNTHETIC_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "deeplab_tf2", f"synthetic-v{GENERATOR_VERSION}")


def ensure_synthetic_dataset(
    dataset_dir: str | None = None, **kwargs
) -> tuple[str, descriptors.DatasetDescriptor]:
    """Returns (dir, descriptor) of the synthetic dataset, generating it if not there yet.

    kwargs go to write_synthetic_dataset; an existing directory made with other parameters
    (or another generator version) is regenerated.
    """
    dataset_dir = dataset_dir or default_dataset_dir()
    defaults = {"num_train": DEFAULT_NUM_TRAIN, "num_val": DEFAULT_NUM_VAL,
                "image_size": DEFAULT_IMAGE_SIZE, "seed": 0}
    wanted = _params(**{k: kwargs.get(k, v) for k, v in defaults.items()})
    try:
        with open(os.path.join(dataset_dir, PARAMS_FILE), encoding="utf-8") as f:
            current = json.load(f)
        if current == wanted:
            from deeplab.data import pipeline

            pipeline.list_shards(dataset_dir, "train")
            pipeline.list_shards(dataset_dir, "val")
            return dataset_dir, descriptors.load_descriptor(dataset_dir)
    except (OSError, ValueError):
        pass
    return dataset_dir, write_synthetic_dataset(dataset_dir, **kwargs)


def main(argv):
    del argv
    from absl import flags

    f = flags.FLAGS
    size = tuple(int(v) for v in f.image_size)
    descriptor = write_synthetic_dataset(f.output_dir, f.num_train, f.num_val, size, f.seed,
                                         f.num_shards, progress=True)
    print(f"wrote {descriptor.splits} to {f.output_dir}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("output_dir", default_dataset_dir(), "Directory for the shards.")
    flags.DEFINE_integer("num_train", DEFAULT_NUM_TRAIN, "Training images.")
    flags.DEFINE_integer("num_val", DEFAULT_NUM_VAL, "Validation images.")
    flags.DEFINE_list("image_size", [str(v) for v in DEFAULT_IMAGE_SIZE], "height,width.")
    flags.DEFINE_integer("seed", 0, "Generator seed.")
    flags.DEFINE_integer("num_shards", 2, "Shards per split.")
    app.run(main)
