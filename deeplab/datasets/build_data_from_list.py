"""Converts any dataset given as a list file of `image label` pairs to TFRecord shards.

The list format (as the MindSpore DeepLab uses): one pair per line, two paths relative to
--data_root separated by whitespace; blank lines and lines starting with # are ignored.

    JPEGImages/2007_000032.jpg SegmentationClassRaw/2007_000032.png

Usage:
  python -m deeplab.datasets.build_data_from_list --data_root=DIR --data_lst=train.txt \\
      --split_name=train --num_classes=21 --output_dir=OUT

Also writes/updates OUT/dataset.json (classes, ignore label, split sizes, per-class pixel
counts, and how the masks were read). Colour masks: --label_colormap=pascal|cityscapes|FILE;
0/255 or 0/1 masks: --binary_masks (see deeplab/datasets/label_encoding.py). A list entry outside
--data_root (`../x.jpg`, an absolute path elsewhere) is refused unless
--allow_outside_data_root.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

from deeplab.data import descriptors
from deeplab.datasets import build_data, label_encoding


def _inside(root: str, path: str) -> bool:
    root = os.path.normpath(os.path.abspath(root))
    return os.path.commonpath([root, os.path.normpath(os.path.abspath(path))]) == root


def read_list(data_root: str, data_lst: str,
              allow_outside: bool = False) -> list[tuple[str, str, str]]:
    """(filename, image path, label path) per line of `data_lst`, paths joined to data_root.

    An entry whose path leaves data_root (by `..` or an absolute path; checked on the path
    text, so symbolic links inside data_root work) is an error unless allow_outside.
    """
    pairs = []
    for number, line in enumerate(build_data.read_split_file(data_lst), start=1):
        fields = line.split()
        if len(fields) != 2:
            raise build_data.ConversionError(
                f"{data_lst}: entry {number} {line!r} is not 'image_path label_path'")
        image, label = (os.path.join(data_root, f) for f in fields)
        for field, path in zip(fields, (image, label), strict=True):
            if not allow_outside and not _inside(data_root, path):
                raise build_data.ConversionError(
                    f"{data_lst}: entry {number}: {field} lies outside --data_root "
                    f"{data_root}; pass --allow_outside_data_root to read it")
        pairs.append((os.path.splitext(os.path.basename(fields[0]))[0], image, label))
    return pairs


def _load(pair, reader: label_encoding.LabelReader) -> build_data.EncodedPair:
    filename, image, label_path = pair
    label, unknown = reader.read(label_path)
    return build_data.make_pair(filename, image, label, reader.num_classes,
                                reader.ignore_label, label_path=label_path,
                                unknown_pixels=unknown)


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
    label_colormap: str | None = None,
    binary_masks: bool = False,
    allow_outside_data_root: bool = False,
) -> build_data.SplitResult:
    """Writes `output_dir/<split_name>-*.tfrecord` from a list file and updates dataset.json.

    label_colormap, binary_masks: how to read the masks (see deeplab/datasets/label_encoding.py);
    colour masks also give dataset.json their colour map.
    """
    build_data.check_output_options(output_dir, num_shards)
    build_data.check_label_options(num_classes, ignore_label)
    reader = label_encoding.reader_from_options(num_classes, ignore_label, label_colormap,
                                                binary_masks)
    if class_names and len(class_names) != num_classes:
        raise build_data.ConversionError(f"--class_names: {len(class_names)} names for "
                                         f"--num_classes={num_classes}")
    base = descriptors.DatasetDescriptor(dataset_name, num_classes, ignore_label, {},
                                         tuple(class_names), colormap=reader.colormap,
                                         label_encoding=reader.encoding())
    pairs = read_list(data_root, data_lst, allow_outside_data_root)
    load = functools.partial(_load, reader=reader)
    result = build_data.write_split(output_dir, split_name, pairs, load, num_shards,
                                    num_workers, skip_invalid)
    build_data.update_descriptor(output_dir, base, {split_name: result.written}, (result,))
    return result


def main(argv):
    del argv
    from absl import flags

    f = flags.FLAGS
    build_data.run_main(lambda: convert_list(
        f.data_root, f.data_lst, f.split_name, f.output_dir, f.num_classes, f.ignore_label,
        tuple(f.class_names or ()), f.dataset_name, f.num_shards, f.num_workers,
        f.skip_invalid, f.label_colormap, f.binary_masks, f.allow_outside_data_root))


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
    flags.DEFINE_string("label_colormap", None,
                        "Labels are colour masks in this palette: pascal, cityscapes, another "
                        "registered palette, or a file of 'r g b' lines, one per class. "
                        "Unknown colours become the ignore label (counted and reported).")
    flags.DEFINE_boolean("binary_masks", False,
                         "Labels are 0/255 (or 0/1) masks: read as classes 0 and 1 "
                         "(needs --num_classes=2).")
    flags.DEFINE_boolean("allow_outside_data_root", False,
                         "Read list entries whose paths leave --data_root (../, absolute).")
    for name in build_data.define_common_flags(num_shards=4):
        flags.declare_key_flag(name)
    app.run(main)
