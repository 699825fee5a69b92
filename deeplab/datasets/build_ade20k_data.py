"""Converts ADE20K (the SceneParsing ADEChallengeData2016 release) to TFRecord shards.

Reads --ade20k_root (ADEChallengeData2016 or its parent): images/{training,validation}/*.jpg
with annotations/{training,validation}/*.png (0 = other/ignore, 1..150 the classes), and
writes splits `train` and `val`.

Usage:
  python -m deeplab.datasets.build_ade20k_data --ade20k_root=ADEChallengeData2016 \\
      --output_dir=tfrecord
"""

from __future__ import annotations

import dataclasses
import glob
import os

from deeplab.data import descriptors
from deeplab.datasets import build_data

DESCRIPTOR = descriptors.get_descriptor("ade20k")
SPLITS = {"training": "train", "validation": "val"}


@dataclasses.dataclass(frozen=True)
class AdeItem:
    name: str
    image: str
    label: str


def find_ade_dir(ade20k_root: str) -> str:
    """The folder holding images/ and annotations/."""
    return build_data.find_folder(ade20k_root, ("ADEChallengeData2016",), "images",
                                  "ADEChallengeData2016")


def split_items(ade_dir: str, folder: str) -> list[AdeItem]:
    """Pairs of images/<folder>/*.jpg and annotations/<folder>/*.png, sorted by name."""
    image_dir = os.path.join(ade_dir, "images", folder)
    if not os.path.isdir(image_dir):
        raise build_data.ConversionError(f"{image_dir}: folder not found")
    images = sorted(glob.glob(os.path.join(image_dir, "*.jpg")))
    if not images:
        raise build_data.ConversionError(f"{image_dir}: no *.jpg images")
    items = []
    for image in images:
        name = os.path.splitext(os.path.basename(image))[0]
        items.append(AdeItem(name, image,
                             os.path.join(ade_dir, "annotations", folder, name + ".png")))
    return items


def _load(item: AdeItem) -> build_data.EncodedPair:
    return build_data.make_pair(item.name, item.image, item.label, DESCRIPTOR.num_classes,
                                DESCRIPTOR.ignore_label)


def convert_ade20k(
    ade20k_root: str,
    output_dir: str,
    num_shards: int = 4,
    num_workers: int | None = None,
    skip_invalid: bool = False,
) -> dict[str, build_data.SplitResult]:
    """Writes `train` and `val` shards; returns results by split."""
    ade_dir = find_ade_dir(ade20k_root)
    plans = ((split, split_items(ade_dir, folder)) for folder, split in SPLITS.items())
    return build_data.write_splits(output_dir, plans, _load, DESCRIPTOR, num_shards,
                                   num_workers, skip_invalid)


def main(argv):
    del argv
    from absl import flags

    f = flags.FLAGS
    build_data.run_main(lambda: convert_ade20k(f.ade20k_root, f.output_dir, f.num_shards,
                                               f.num_workers, f.skip_invalid))


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("ade20k_root", None, "ADEChallengeData2016 folder.", required=True)
    for name in build_data.define_common_flags(num_shards=4):
        flags.declare_key_flag(name)
    app.run(main)
