"""Converts any dataset given as a list file of `image label` pairs to TFRecord shards.

The list format (as the MindSpore DeepLab uses): one pair per line, two paths relative to
--data_root separated by whitespace; blank lines and lines starting with # are ignored.

    JPEGImages/2007_000032.jpg SegmentationClassRaw/2007_000032.png

Usage:
  python -m datasets.build_data_from_list --data_root=DIR --data_lst=train.txt \\
      --split_name=train --num_classes=21 --output_dir=OUT

Also writes/updates OUT/dataset.json (classes, ignore label, split sizes).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

from datasets import build_data
from deeplab.data import descriptors


def read_list(data_root: str, data_lst: str) -> list[tuple[str, str, str]]:
    """(filename, image path, label path) per line of `data_lst`, paths joined to data_root."""
    pairs = []
    for number, line in enumerate(build_data.read_split_file(data_lst), start=1):
        fields = line.split()
        if len(fields) != 2:
            raise build_data.ConversionError(
                f"{data_lst}: entry {number} {line!r} is not 'image_path label_path'")
        image, label = (os.path.join(data_root, f) for f in fields)
        pairs.append((os.path.splitext(os.path.basename(fields[0]))[0], image, label))
    return pairs


def _load(pair, num_classes: int, ignore_label: int) -> build_data.EncodedPair:
    filename, image, label = pair
    return build_data.make_pair(filename, image, label, num_classes, ignore_label)


def convert_list(
    data_root: str,
    data_lst: str,
    split_name: str,
    output_dir: str,
    num_classes: int,
    ignore_label: int = 255,
    class_names: Sequence[str] = (),
    dataset_name: str = "custom",
    num_shards: int = 4,
    num_workers: int | None = None,
    skip_invalid: bool = False,
) -> build_data.SplitResult:
    """Writes `output_dir/<split_name>-*.tfrecord` from a list file and updates dataset.json."""
    base = descriptors.DatasetDescriptor(dataset_name, num_classes, ignore_label, {},
                                         tuple(class_names))
    pairs = read_list(data_root, data_lst)
    load = functools.partial(_load, num_classes=num_classes, ignore_label=ignore_label)
    result = build_data.write_split(output_dir, split_name, pairs, load, num_shards,
                                    num_workers, skip_invalid)
    build_data.update_descriptor(output_dir, base, {split_name: result.written})
    return result


def main(argv):
    del argv
    from absl import flags

    f = flags.FLAGS
    build_data.run_main(lambda: convert_list(
        f.data_root, f.data_lst, f.split_name, f.output_dir, f.num_classes, f.ignore_label,
        tuple(f.class_names or ()), f.dataset_name, f.num_shards, f.num_workers,
        f.skip_invalid))


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("data_root", None, "Root the list's paths are relative to.",
                        required=True)
    flags.DEFINE_string("data_lst", None, "List file of 'image label' lines.", required=True)
    flags.DEFINE_string("split_name", None, "Split name of the shards, e.g. train.",
                        required=True)
    flags.DEFINE_integer("num_classes", None, "Number of classes.", required=True)
    flags.DEFINE_integer("ignore_label", 255, "Label value to ignore.")
    flags.DEFINE_list("class_names", None, "Comma-separated class names (optional).")
    flags.DEFINE_string("dataset_name", "custom", "Name stored in dataset.json.")
    for name in build_data.define_common_flags(num_shards=4):
        flags.declare_key_flag(name)
    app.run(main)
