"""Shared converter machinery: reading and checking pairs, and the sharded parallel writer.

Every converter in deeplab/datasets/ turns its dataset layout into a list of items and a `load`
function (item -> EncodedPair); `write_split` does the rest: parallel loading on threads,
a progress bar, deterministic contiguous sharding in item order, temporary shard names
renamed only when the whole split succeeded.

Image policy (documented in the README): 8-bit RGB JPEG and PNG files are stored byte for
byte. Grayscale, palette, grayscale+alpha, RGBA, CMYK and other 8-bit images are converted
to RGB (alpha dropped) and stored as PNG, with a log note. 16-bit and 32-bit images are
rejected: their scaling to 8 bits is dataset-specific, convert them first.
Labels must be single-channel class-index images (grayscale, or palette PNGs read by index,
as VOC's SegmentationClass); 16-bit grayscale label PNGs are accepted when every value fits
in 8 bits and rejected, naming the file, otherwise. Colour labels and JPEG labels are
rejected (the list converter reads colour and 0/255 masks with --label_colormap and
--binary_masks, see deeplab/datasets/label_encoding.py).

Every split also gets a per-label-value histogram (`SplitResult.histogram`) from which
`update_descriptor` stores per-class pixel counts in dataset.json (for
`train.py --label_weights=auto`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import io
import math
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from absl import logging
from PIL import Image, UnidentifiedImageError

from deeplab.data import descriptors
from deeplab.datasets import shard_files
from deeplab.utils.progress import Progress

# TensorFlow (through deeplab.data.schema) is imported only when shards are written, so
# `--help` and input errors of the converters answer at once.

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CONVERTIBLE_MODES = ("L", "P", "LA", "PA", "RGBA", "RGBX", "CMYK", "YCbCr", "1", "La")


class ConversionError(ValueError):
    """A converter input problem; the message names the file and what is wrong."""


def find_folder(root: str, subfolders: Sequence[str], marker: str, expected: str) -> str:
    """The first of root and root/<subfolder> (in order) that holds the folder `marker`;
    ConversionError naming root, the marker and `expected` (what root should be) otherwise."""
    for candidate in (root, *(os.path.join(root, sub) for sub in subfolders)):
        if os.path.isdir(os.path.join(candidate, marker)):
            return candidate
    raise ConversionError(f"{root}: no {marker}/ folder (expected {expected})")


class InvalidPairError(ConversionError):
    """One image/label pair cannot be used (skipped with --skip_invalid)."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclasses.dataclass(frozen=True)
class EncodedPair:
    """A checked pair ready for schema.encode_example.

    image_data: JPEG or PNG bytes (8-bit RGB, or grayscale JPEG); image_format: "jpeg"/"png";
    label_data: 8-bit grayscale PNG of class indices; height, width: pixels;
    notes: conversions applied, for the log.
    class_pixels: int64 [256] pixels per label value (None: counted from label_data).
    unknown_pixels: pixels of unknown colours that the label reader set to ignore.
    """

    filename: str
    image_data: bytes
    image_format: str
    label_data: bytes
    height: int
    width: int
    notes: tuple[str, ...] = ()
    class_pixels: np.ndarray | None = None  # int64 [256] pixels per label value, if known
    unknown_pixels: int = 0  # pixels the label reader could not map (set to ignore)

    def serialize(self) -> bytes:
        from deeplab.data import schema

        return schema.encode_example(self.image_data, self.image_format, self.label_data,
                                     self.filename, self.height, self.width)


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise InvalidPairError(path, "file not found") from None
    except OSError as err:
        raise InvalidPairError(path, f"cannot read file: {err.strerror or err}") from None


def _open_image(data: bytes, path: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except Exception as err:  # PIL raises many types for corrupt files
        detail = "not a known image format, or a corrupt file" if \
            isinstance(err, UnidentifiedImageError) else str(err)
        raise InvalidPairError(path, f"cannot decode image ({detail})") from None


def _png_bit_depth(data: bytes) -> int | None:
    """Bit depth from a PNG's IHDR chunk (PIL silently reduces 16-bit RGB to 8 bits)."""
    if data.startswith(_PNG_SIGNATURE) and len(data) > 24:
        return data[24]
    return None


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W] (grayscale) or [H, W, 3] (RGB) array."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def read_image(path: str) -> tuple[bytes, str, int, int, tuple[str, ...]]:
    """Reads and checks an image file.

    Returns (data, format, height, width, notes): the file's own bytes for 8-bit RGB JPEG
    or PNG, else PNG bytes of its RGB conversion (with a note saying so).
    Raises InvalidPairError for unreadable, undecodable, 16/32-bit or unsupported images.
    """
    data = _read_bytes(path)
    image = _open_image(data, path)
    width, height = image.size
    depth = _png_bit_depth(data)
    if depth == 16 or image.mode.startswith(("I", "F")):
        raise InvalidPairError(path, f"{depth or 32}-bit image (mode {image.mode}) is not "
                               "supported: convert it to 8-bit RGB first")
    if image.mode == "RGB" and image.format in ("JPEG", "PNG"):
        return data, image.format.lower(), height, width, ()
    if image.mode not in _CONVERTIBLE_MODES + ("RGB",):
        raise InvalidPairError(path, f"unsupported image mode {image.mode}")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    note = f"{path}: {image.format} image in mode {image.mode} converted to RGB PNG"
    if "A" in image.mode:
        note += " (alpha dropped)"
    rgb = np.asarray(image.convert("RGB"))
    return encode_png(rgb), "png", height, width, (note,)


def read_label_image(path: str) -> np.ndarray:
    """Reads a class-index label image as uint8 [H, W] (palette PNGs by index).

    Raises InvalidPairError for undecodable files, JPEG and colour labels and values above
    255 (16-bit labels whose values fit 8 bits are accepted).
    """
    image = _open_image(_read_bytes(path), path)
    if image.format == "JPEG":
        raise InvalidPairError(path, "JPEG label: lossy compression changes class values at "
                               "edges; save labels as PNG")
    if image.mode in ("L", "P", "1"):
        return np.asarray(image, dtype=np.uint8)
    if image.mode.startswith("I"):
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 255):
            raise InvalidPairError(path, f"16-bit label with values {values.min()}.."
                                   f"{values.max()}: they do not fit 8 bits (labels are "
                                   "class indices 0..255)")
        return values.astype(np.uint8)
    raise InvalidPairError(path, f"label is a {image.mode} image; labels must be single-"
                           "channel class indices (grayscale or palette PNG)")


def check_label_values(label: np.ndarray, num_classes: int, ignore_label: int, path: str):
    """Raises InvalidPairError unless every value is in [0, num_classes) or ignore_label."""
    values = np.unique(label)
    bad = values[(values >= num_classes) & (values != ignore_label)]
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:8])
        raise InvalidPairError(path, f"label values {shown} outside [0, {num_classes}) and not "
                               f"the ignore label {ignore_label}")


def make_pair(
    filename: str,
    image_path: str,
    label: np.ndarray | str,
    num_classes: int,
    ignore_label: int,
    label_path: str | None = None,
    label_map: np.ndarray | None = None,
    unknown_pixels: int = 0,
) -> EncodedPair:
    """Reads, checks and encodes one pair.

    Args:
      filename: name stored in the Example.
      image_path: image file.
      label: label file path, or an already-read uint8 [H, W] class map (then label_path
        names its source for errors).
      num_classes, ignore_label: the allowed label values.
      label_map: optional uint8 [256] lookup applied to the raw label values first
        (e.g. Cityscapes id -> train id).
      unknown_pixels: pixels the label reader set to ignore (unknown mask colours).
    """
    if isinstance(label, str):
        label_path = label
        label = read_label_image(label)
    label_path = label_path or "<label>"
    if label_map is not None:
        label = label_map[label]
    data, fmt, height, width, notes = read_image(image_path)
    if label.shape != (height, width):
        raise InvalidPairError(label_path, f"label is {label.shape[0]}x{label.shape[1]} (HxW) "
                               f"but image {image_path} is {height}x{width}")
    check_label_values(label, num_classes, ignore_label, label_path)
    label = label.astype(np.uint8)
    return EncodedPair(filename, data, fmt, encode_png(label), height, width, notes,
                       np.bincount(label.ravel(), minlength=256), unknown_pixels)


def _ordered_map(executor, fn, items: Sequence, window: int) -> Iterator:
    """Yields (index, result or exception) in item order, at most `window` in flight."""
    pending = collections.deque()

    def call(item):
        try:
            return fn(item)
        except ConversionError as err:
            return err

    for index, item in enumerate(items):
        pending.append((index, executor.submit(call, item)))
        if len(pending) >= window:
            i, future = pending.popleft()
            yield i, future.result()
    while pending:
        i, future = pending.popleft()
        yield i, future.result()


@dataclasses.dataclass(frozen=True)
class SplitResult:
    """What write_split wrote.

    histogram: per label value v (int64 [256] each): "pixels" (pixels of value v), "images"
      (images holding v), "image_pixels" (all pixels of the images holding v).
    unknown_pixels: pixels the label reader set to ignore (unknown mask colours).
    """

    split: str
    written: int
    skipped: int
    shards: tuple[str, ...]
    histogram: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    unknown_pixels: int = 0


def _label_counts(pair: EncodedPair) -> np.ndarray:
    if pair.class_pixels is not None:
        return np.asarray(pair.class_pixels, np.int64)
    label = np.asarray(Image.open(io.BytesIO(pair.label_data)))
    return np.bincount(label.ravel(), minlength=256)


class _Histogram:
    """Sums of per-image label-value counts (see SplitResult.histogram)."""

    def __init__(self):
        self.values = {key: np.zeros(256, np.int64) for key in descriptors.STAT_KEYS}

    def add(self, counts: np.ndarray) -> None:
        present = counts > 0
        self.values["pixels"] += counts
        self.values["images"] += present
        self.values["image_pixels"] += present * counts.sum()


def check_output_options(output_dir: str, num_shards: int) -> None:
    """ConversionError naming the flag when --output_dir or --num_shards cannot work."""
    if num_shards < 1:
        raise ConversionError(f"--num_shards: must be at least 1, got {num_shards}")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConversionError(f"--output_dir: {output_dir} is a file, not a directory: "
                              "name a directory (it is created if missing)")


def check_label_options(num_classes: int, ignore_label: int) -> None:
    """ConversionError naming the flag when labels cannot be 8-bit class indices."""
    if not 1 <= num_classes <= 256:
        raise ConversionError(f"--num_classes: must be in 1..256 (labels are 8-bit), got "
                              f"{num_classes}")
    if not 0 <= ignore_label <= 255:
        raise ConversionError(f"--ignore_label: must be in 0..255 (labels are 8-bit), got "
                              f"{ignore_label}")


def write_split(
    output_dir: str,
    split: str,
    items: Sequence,
    load: Callable[[object], EncodedPair],
    num_shards: int,
    num_workers: int | None = None,
    skip_invalid: bool = False,
    progress: bool = True,
) -> SplitResult:
    """Writes `<split>-%05d-of-%05d.tfrecord` shards of load(item) for every item.

    Items go to shards contiguously in the given order (shard i gets items
    [i * ceil(n / shards), (i + 1) * ceil(n / shards))), so the output is deterministic;
    when that would leave shards empty (6 items, 4 shards) fewer shards are written
    (3 of 2 items). Loading runs on `num_workers` threads. Shards are written under
    temporary names and the split is replaced as a whole when all are complete (see
    `shard_files`); an interrupted replacement or temporaries of dead runs in output_dir
    are dealt with first. An invalid pair raises its InvalidPairError (nothing is left
    behind) unless skip_invalid, which logs and skips it.
    """
    import tensorflow as tf

    from deeplab.data import schema

    check_output_options(output_dir, num_shards)
    if not items:
        raise ConversionError(f"split {split!r} has no examples")
    os.makedirs(output_dir, exist_ok=True)
    shard_files.recover(output_dir)
    per_shard = math.ceil(len(items) / min(num_shards, len(items)))
    num_shards = math.ceil(len(items) / per_shard)  # no empty shard
    finals = [os.path.join(output_dir, schema.shard_name(split, i, num_shards))
              for i in range(num_shards)]
    temps = [shard_files.temporary_name(path) for path in finals]
    workers = num_workers or os.cpu_count() or 1
    written = skipped = unknown = 0
    histogram = _Histogram()
    try:
        with concurrent.futures.ThreadPoolExecutor(workers) as executor, \
                Progress(len(items), split, interval=None if progress else 1e9) as bar:
            writer, current = None, -1
            for index, result in _ordered_map(executor, load, items, 4 * workers):
                shard = index // per_shard
                if shard != current:
                    if writer is not None:
                        writer.close()
                    writer, current = tf.io.TFRecordWriter(temps[shard]), shard
                bar.update()
                if isinstance(result, ConversionError):
                    if not skip_invalid:
                        raise result
                    logging.warning("skipped: %s", result)
                    skipped += 1
                    continue
                for note in result.notes:
                    logging.info("%s", note)
                writer.write(result.serialize())
                histogram.add(_label_counts(result))
                unknown += result.unknown_pixels
                written += 1
            writer.close()
    except BaseException:
        for path in temps:
            if os.path.exists(path):
                os.remove(path)
        raise
    if written == 0:
        for path in temps:
            if os.path.exists(path):
                os.remove(path)
        raise ConversionError(f"split {split!r}: every one of {len(items)} pairs was invalid")
    shard_files.replace_split(output_dir, split, temps, finals)
    if unknown:
        logging.warning("split %r: %d pixels of unknown mask colours set to the ignore label",
                        split, unknown)
    return SplitResult(split, written, skipped, tuple(finals), histogram.values, unknown)


def class_statistics(histogram: dict[str, np.ndarray], num_classes: int,
                     ignore_label: int) -> dict:
    """dataset.json's per-class statistics of a split from SplitResult.histogram.

    Returns {"pixels", "images", "image_pixels": [num_classes] ints, "ignore_pixels": int};
    the ignore label counts as no class (its entries are 0 when it lies inside the range).
    """
    stats = {}
    for key in descriptors.STAT_KEYS:
        values = np.asarray(histogram[key], np.int64)[:num_classes].copy()
        if ignore_label < num_classes:
            values[ignore_label] = 0
        stats[key] = values.tolist()
    stats["ignore_pixels"] = int(histogram["pixels"][ignore_label])
    return stats


def update_descriptor(
    output_dir: str, base: descriptors.DatasetDescriptor, counts: dict[str, int],
    results: Sequence[SplitResult] = (),
) -> descriptors.DatasetDescriptor:
    """Writes `output_dir/dataset.json`: `base` with these split counts merged into the file's.

    `results` (the written splits) add their per-class statistics and unknown-colour
    pixel counts. Raises ConversionError if the directory already describes a different
    dataset (another class count or ignore label).
    """
    path = os.path.join(output_dir, descriptors.DESCRIPTOR_FILE)
    splits, stats, old = {}, {}, None
    if os.path.isfile(path):
        old = descriptors.read_descriptor_file(path)
        stats.update(old.class_statistics)
        if (old.num_classes, old.ignore_label) != (base.num_classes, base.ignore_label):
            raise ConversionError(
                f"{path} describes {old.num_classes} classes / ignore {old.ignore_label}, "
                f"not {base.num_classes} / {base.ignore_label}: use another --output_dir")
        splits.update(old.splits)
    splits.update(counts)
    encoding = dict(base.label_encoding)
    for result in results:
        if result.histogram:
            stats[result.split] = class_statistics(result.histogram, base.num_classes,
                                                   base.ignore_label)
        if "label_colormap" in encoding:
            encoding.setdefault("unknown_color_pixels", {})[result.split] = \
                result.unknown_pixels
    colormap = base.colormap if base.colormap is not None or old is None else old.colormap
    merged = dataclasses.replace(base, splits=splits, class_statistics=stats,
                                 label_encoding=encoding, colormap=colormap)
    descriptors.write_descriptor(output_dir, merged)
    return merged


def read_split_file(path: str) -> list[str]:
    """Non-empty, stripped lines of a split/list file; errors if missing or empty."""
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: split file not found")
    with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is not part of a name
        lines = [line.strip() for line in f]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise ConversionError(f"{path}: split file lists no images")
    return lines


def define_common_flags(num_shards: int) -> tuple[str, ...]:
    """Flags every converter has; call from a converter's `__main__` block only.

    Returns their names, for `flags.declare_key_flag` in the caller (so `--help` lists them).
    """
    from absl import flags

    flags.DEFINE_string("output_dir", None, "Directory for the TFRecord shards.", required=True)
    flags.DEFINE_integer("num_shards", num_shards, "Shards per split.")
    flags.DEFINE_integer("num_workers", None, "Loader threads (default: CPU count).")
    flags.DEFINE_boolean("skip_invalid", False,
                         "Log and skip invalid pairs instead of stopping at the first one.")
    return ("output_dir", "num_shards", "num_workers", "skip_invalid")


def write_splits(
    output_dir: str,
    plans,
    load: Callable[[object], EncodedPair],
    descriptor: descriptors.DatasetDescriptor,
    num_shards: int,
    num_workers: int | None = None,
    skip_invalid: bool = False,
) -> dict[str, SplitResult]:
    """`write_split` for each (split, items) of `plans`, in order, then `update_descriptor`
    with their counts. A lazy `plans` lists a split's items only when its turn comes."""
    check_output_options(output_dir, num_shards)
    results = {split: write_split(output_dir, split, items, load, num_shards, num_workers,
                                  skip_invalid) for split, items in plans}
    update_descriptor(output_dir, descriptor, {s: r.written for s, r in results.items()},
                      tuple(results.values()))
    return results


def run_main(convert: Callable[[], object]) -> None:
    """Runs a converter body; a ConversionError (or another user error: a ValueError or an
    OSError such as a full disk) becomes one line `error: ...` and exit status 2."""
    import sys

    try:
        convert()
    except (ConversionError, ValueError, OSError) as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(2)
