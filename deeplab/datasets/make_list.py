"""Writes an `image label` list file (the build_data_from_list format) from two folders.

Images and labels are matched by file name without extension; the list holds paths relative
to --root (default: the folders' common parent), sorted by name.

Usage:
  python -m deeplab.datasets.make_list --image_dir=DIR/images --label_dir=DIR/labels \\
      --output_file=DIR/train.txt
"""

from __future__ import annotations

import os

from deeplab.datasets.build_data import ConversionError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _by_stem(directory: str, extensions) -> dict[str, str]:
    if not os.path.isdir(directory):
        raise ConversionError(f"{directory}: directory not found")
    files = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in extensions:
            files.setdefault(stem, os.path.join(directory, name))
    return files


def write_list(
    image_dir: str,
    label_dir: str,
    output_file: str,
    root: str | None = None,
    label_extensions=(".png",),
    allow_unmatched: bool = False,
) -> int:
    """Writes one `image label` line per image that has a label; returns the line count.

    An image without a label (or a label without an image) is an error naming it, unless
    allow_unmatched. Paths are relative to `root` and use forward slashes.
    """
    images = _by_stem(image_dir, IMAGE_EXTENSIONS)
    labels = _by_stem(label_dir, tuple(label_extensions))
    unmatched = sorted(set(images) ^ set(labels))
    if unmatched and not allow_unmatched:
        stem = unmatched[0]
        path = images.get(stem) or labels.get(stem)
        other = "label" if stem in images else "image"
        raise ConversionError(f"{path}: no matching {other} ({len(unmatched)} unmatched "
                              "files in all)")
    stems = sorted(set(images) & set(labels))
    if not stems:
        raise ConversionError(f"no image/label pairs in {image_dir} and {label_dir}")
    root = root or os.path.commonpath([os.path.abspath(image_dir), os.path.abspath(label_dir)])

    def rel(path):
        return os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")

    lines = [f"{rel(images[s])} {rel(labels[s])}\n" for s in stems]
    with open(output_file, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return len(lines)


def main(argv):
    del argv
    import sys

    from absl import flags

    f = flags.FLAGS
    try:
        count = write_list(f.image_dir, f.label_dir, f.output_file, f.root,
                           allow_unmatched=f.allow_unmatched)
    except ConversionError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(2)
    print(f"wrote {count} pairs to {f.output_file}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("image_dir", None, "Folder of images.", required=True)
    flags.DEFINE_string("label_dir", None, "Folder of label PNGs.", required=True)
    flags.DEFINE_string("output_file", None, "List file to write.", required=True)
    flags.DEFINE_string("root", None, "Paths are written relative to this (default: the "
                        "common parent of the two folders).")
    flags.DEFINE_boolean("allow_unmatched", False, "Skip images without labels and vice "
                         "versa instead of failing.")
    app.run(main)
