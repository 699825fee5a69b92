"""Converts Cityscapes (fine annotations) to TFRecord shards with the 19 train ids.

Reads --cityscapes_root/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png with
gtFine/<split>/<city>/<name>_gtFine_labelIds.png, maps label ids to train ids with the
official table (cityscapesScripts labels.py; every other id, including -1 "license plate",
becomes 255 = ignore) and writes splits `train_fine` and `val_fine` as the original DeepLab.

Usage:
  python -m deeplab.datasets.build_cityscapes_data --cityscapes_root=cityscapes \\
      --output_dir=tfrecord
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import os
from collections.abc import Sequence

import numpy as np

from deeplab.data import descriptors
from deeplab.datasets import build_data

DESCRIPTOR = descriptors.get_descriptor("cityscapes")
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"



def train_id_table() -> np.ndarray:
    """uint8 [256] lookup: label id -> train id (255 for ignored ids).

    The inverse of the descriptor's `label_ids` (train id -> official label id).
    """
    table = np.full(256, DESCRIPTOR.ignore_label, np.uint8)
    for train_id, label_id in DESCRIPTOR.label_ids.items():
        if train_id < DESCRIPTOR.num_classes:
            table[label_id] = train_id
    return table


@dataclasses.dataclass(frozen=True)
class CityscapesItem:
    name: str
    image: str
    label: str


def split_items(root: str, split: str) -> list[CityscapesItem]:
    """Pairs of leftImg8bit/<split>, sorted by city and name."""
    image_dir = os.path.join(root, "leftImg8bit", split)
    if not os.path.isdir(image_dir):
        raise build_data.ConversionError(f"{image_dir}: folder not found (expected the "
                                          "Cityscapes leftImg8bit/ layout)")
    images = sorted(glob.glob(os.path.join(image_dir, "*", "*" + IMAGE_SUFFIX)))
    if not images:
        raise build_data.ConversionError(f"{image_dir}: no *{IMAGE_SUFFIX} images")
    items = []
    for image in images:
        city = os.path.basename(os.path.dirname(image))
        name = os.path.basename(image)[: -len(IMAGE_SUFFIX)]
        label = os.path.join(root, "gtFine", split, city, name + LABEL_SUFFIX)
        items.append(CityscapesItem(name, image, label))
    return items


def _load(item: CityscapesItem, table: np.ndarray) -> build_data.EncodedPair:
    return build_data.make_pair(item.name, item.image, item.label, DESCRIPTOR.num_classes,
                                DESCRIPTOR.ignore_label, label_map=table)


def convert_cityscapes(
    cityscapes_root: str,
    output_dir: str,
    splits: Sequence[str] = ("train", "val"),
    num_shards: int = 10,
    num_workers: int | None = None,
    skip_invalid: bool = False,
) -> dict[str, build_data.SplitResult]:
    """Writes `<split>_fine` shards for each split; returns results by output split name."""
    load = functools.partial(_load, table=train_id_table())
    plans = ((split + "_fine", split_items(cityscapes_root, split)) for split in splits)
    return build_data.write_splits(output_dir, plans, load, DESCRIPTOR, num_shards,
                                   num_workers, skip_invalid)


def main(argv):
    del argv
    from absl import flags

    f = flags.FLAGS
    build_data.run_main(lambda: convert_cityscapes(
        f.cityscapes_root, f.output_dir, tuple(f.splits), f.num_shards, f.num_workers,
        f.skip_invalid))


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("cityscapes_root", None, "Folder holding leftImg8bit/ and gtFine/.",
                        required=True)
    flags.DEFINE_list("splits", ["train", "val"], "Cityscapes splits to convert.")
    for name in build_data.define_common_flags(num_shards=10):
        flags.declare_key_flag(name)
    app.run(main)
