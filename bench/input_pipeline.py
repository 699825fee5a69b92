"""Input-pipeline throughput: augmented training crops per second.

Writes a VOC-like set of random-texture JPEG images (500x375, the typical VOC size) to a
temporary directory, then times make_dataset(training=True) at 513x513 crops with the
original's augmentation (random scale 0.5..2.0 step 0.25, pad, crop, flip).

  python bench/input_pipeline.py [--num_parallel_calls=2] [--batch_size=8] [--seconds=20]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from deeplab.data import pipeline  # noqa: E402
from deeplab.datasets import build_data, testing_utils  # noqa: E402

flags.DEFINE_integer("num_images", 64, "Images in the generated dataset.")
flags.DEFINE_list("num_parallel_calls", ["2"], "Parallel decode/augment calls to time.")
flags.DEFINE_integer("batch_size", 8, "Batch size.")
flags.DEFINE_list("crop_size", ["513", "513"], "Training crop height,width.")
flags.DEFINE_float("seconds", 20.0, "Timed seconds per setting (after a warm-up batch).")
FLAGS = flags.FLAGS


def _write_dataset(directory: str, count: int) -> None:
    """VOC-sized JPEG images of smooth colour plus noise, with 21-class labels."""
    rng = np.random.default_rng(0)
    items = []
    for i in range(count):
        height, width = (375, 500) if i % 3 else (500, 375)
        coarse = rng.integers(0, 256, (height // 25 + 1, width // 25 + 1, 3), dtype=np.uint8)
        image = np.kron(coarse, np.ones((25, 25, 1), np.uint8))[:height, :width]
        image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        label = np.kron(rng.integers(0, 21, (height // 50 + 1, width // 50 + 1)),
                        np.ones((50, 50), int))[:height, :width].astype(np.uint8)
        image_path = testing_utils.save(image, os.path.join(directory, "src", f"{i}.jpg"),
                                        quality=90)
        label_path = testing_utils.save(label, os.path.join(directory, "src", f"{i}.png"))
        items.append((f"{i:05d}", image_path, label_path))
    load = lambda item: build_data.make_pair(*item, num_classes=21, ignore_label=255)
    build_data.write_split(directory, "train", items, load, num_shards=4, progress=False)


def _time(directory: str, calls: int) -> float:
    options = pipeline.InputOptions(crop_size=tuple(int(v) for v in FLAGS.crop_size))
    ds = pipeline.make_dataset(directory, "train", FLAGS.batch_size, options, training=True,
                               seed=0, num_parallel_calls=calls)
    iterator = iter(ds)
    next(iterator)
    images, start = 0, time.perf_counter()
    while time.perf_counter() - start < FLAGS.seconds:
        images += int(next(iterator)["image"].shape[0])
    return images / (time.perf_counter() - start)


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as directory:
        _write_dataset(directory, FLAGS.num_images)
        crop = "x".join(FLAGS.crop_size)
        print(f"| parallel calls | batch | crop | images/s | (CPUs: {os.cpu_count()}) |")
        print("|---|---|---|---|---|")
        for calls in FLAGS.num_parallel_calls:
            rate = _time(directory, int(calls))
            print(f"| {calls} | {FLAGS.batch_size} | {crop} | {rate:.1f} | |")


if __name__ == "__main__":
    app.run(main)
