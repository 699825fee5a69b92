"""Shared converter machinery: reading and checking pairs, and the sharded parallel writer.

Every converter in datasets/ turns its dataset layout into a list of items and a `load`
function (item -> EncodedPair); `write_split` does the rest: parallel loading on threads,
a progress bar, deterministic contiguous sharding in item order, temporary shard names
renamed only when the whole split succeeded.

Image policy (documented in the README): 8-bit RGB JPEG and PNG files are stored byte for
byte. Grayscale, palette, grayscale+alpha, RGBA, CMYK and other 8-bit images are converted
to RGB (alpha dropped) and stored as PNG, with a log note. 16-bit and 32-bit images are
rejected: their scaling to 8 bits is dataset-specific, convert them first.
Labels must be single-channel class-index images (grayscale, or palette PNGs read by index,
as VOC's SegmentationClass); colour labels are rejected.
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
from PIL import Image

from deeplab.data import descriptors
from deeplab.utils.progress import Progress

# TensorFlow (through deeplab.data.schema) is imported only when shards are written, so
# `--help` and input errors of the converters answer at once.

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CONVERTIBLE_MODES = ("L", "P", "LA", "PA", "RGBA", "RGBX", "CMYK", "YCbCr", "1", "La")


class ConversionError(ValueError):
    """A converter input problem; the message names the file and what is wrong."""


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
    """

    filename: str
    image_data: bytes
    image_format: str
    label_data: bytes
    height: int
    width: int
    notes: tuple[str, ...] = ()

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
        raise InvalidPairError(path, f"cannot decode image ({err})") from None


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

    Raises InvalidPairError for undecodable files, colour labels and values above 255.
    """
    image = _open_image(_read_bytes(path), path)
    if image.mode in ("L", "P", "1"):
        return np.asarray(image, dtype=np.uint8)
    if image.mode.startswith("I"):
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 255):
            raise InvalidPairError(path, f"label values {values.min()}..{values.max()} do "
                                   "not fit 8 bits")
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
    return EncodedPair(filename, data, fmt, encode_png(label.astype(np.uint8)), height, width,
                       notes)


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


def _temporary_name(path: str) -> str:
    """A name the glob `<split>-*` does not match."""
    directory, base = os.path.split(path)
    return os.path.join(directory, f".tmp-{os.getpid()}-{base}")


@dataclasses.dataclass(frozen=True)
class SplitResult:
    split: str
    written: int
    skipped: int
    shards: tuple[str, ...]


def _remove_stale_shards(output_dir: str, split: str, keep: Sequence[str]) -> None:
    prefix = split + "-"
    for name in os.listdir(output_dir):
        path = os.path.join(output_dir, name)
        is_shard = name.startswith(prefix) and name.endswith(".tfrecord") and "-of-" in name
        if is_shard and path not in keep and name[len(prefix):][:1].isdigit():
            os.remove(path)


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
    [i * ceil(n / shards), (i + 1) * ceil(n / shards))), so the output is deterministic.
    Loading runs on `num_workers` threads. Shards are written under temporary names and
    renamed only when the whole split succeeded, then older shards of the split with
    another shard count are removed. An invalid pair raises its InvalidPairError (nothing
    is left behind) unless skip_invalid, which logs and skips it.
    """
    import tensorflow as tf

    from deeplab.data import schema

    if not items:
        raise ConversionError(f"split {split!r} has no examples")
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    os.makedirs(output_dir, exist_ok=True)
    num_shards = min(num_shards, len(items))
    per_shard = math.ceil(len(items) / num_shards)
    finals = [os.path.join(output_dir, schema.shard_name(split, i, num_shards))
              for i in range(num_shards)]
    temps = [_temporary_name(path) for path in finals]
    workers = num_workers or os.cpu_count() or 1
    written = skipped = 0
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
    for temp, final in zip(temps, finals, strict=True):
        os.replace(temp, final)
    _remove_stale_shards(output_dir, split, finals)
    return SplitResult(split, written, skipped, tuple(finals))


def update_descriptor(
    output_dir: str, base: descriptors.DatasetDescriptor, counts: dict[str, int]
) -> descriptors.DatasetDescriptor:
    """Writes `output_dir/dataset.json`: `base` with these split counts merged into the file's.

    Raises ConversionError if the directory already describes a different dataset
    (another class count or ignore label).
    """
    path = os.path.join(output_dir, descriptors.DESCRIPTOR_FILE)
    splits = {}
    if os.path.isfile(path):
        old = descriptors.read_descriptor_file(path)
        if (old.num_classes, old.ignore_label) != (base.num_classes, base.ignore_label):
            raise ConversionError(
                f"{path} describes {old.num_classes} classes / ignore {old.ignore_label}, "
                f"not {base.num_classes} / {base.ignore_label}: use another --output_dir")
        splits.update(old.splits)
    splits.update(counts)
    merged = dataclasses.replace(base, splits=splits)
    descriptors.write_descriptor(output_dir, merged)
    return merged


def read_split_file(path: str) -> list[str]:
    """Non-empty, stripped lines of a split/list file; errors if missing or empty."""
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: split file not found")
    with open(path, encoding="utf-8") as f:
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
    results = {split: write_split(output_dir, split, items, load, num_shards, num_workers,
                                  skip_invalid) for split, items in plans}
    update_descriptor(output_dir, descriptor, {s: r.written for s, r in results.items()})
    return results


def run_main(convert: Callable[[], object]) -> None:
    """Runs a converter body, turning ConversionError into a one-line message and exit 1."""
    import sys

    try:
        convert()
    except ConversionError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(1)
