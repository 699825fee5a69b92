"""Damaged records of TFRecord shards, found and named: shard, record index, byte offset.

    damage = scan_split(files)               # CRC, framing and decoding of every record
    for record in damage.damaged:
        print(record.message())              # <shard>: record 57 at byte 1624930 is damaged ...
    located = locate_damage(files, exc)      # after a DataLossError from tf.data

TFRecord framing (per record, little endian): uint64 length, uint32 masked CRC-32C of the
length bytes, `length` bytes of data, uint32 masked CRC-32C of the data. The walk over the
framing is Python (12 bytes per record); the data CRC is checked by TensorFlow's own C++
record reader (`tf_record_random_reader`, which raises DataLossError on a mismatch), the
length CRC (8 bytes) by TensorBoard's pure-Python CRC-32C. A record is damaged when its
framing or CRC is wrong, or when its Example does not parse or its image or label does not
decode with the pipeline's decoder (or their sizes differ). Record indices count from 0 in
each shard; offsets are bytes from the start of the shard.

A damaged length field loses the framing: the records after it cannot be told apart, so
the rest of the shard counts as that one damaged record (the message says how many bytes).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import struct
from collections.abc import Iterator, Sequence

HEADER_BYTES = 12  # uint64 length + uint32 masked CRC of the length
FOOTER_BYTES = 4  # uint32 masked CRC of the data
SKIP_FLAG = "--skip_damaged_records"
FIX = f"re-convert the split or pass {SKIP_FLAG}"
CRC_MISMATCH = "CRC mismatch"
_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*| \[Op:.*$|\.$")


@dataclasses.dataclass(frozen=True)
class DamagedRecord:
    """One damaged record: shard path, index in the shard (from 0), byte offset, problem."""

    shard: str
    index: int
    offset: int
    problem: str

    def message(self) -> str:
        """The one line naming the record and the two fixes."""
        return (f"{self.shard}: record {self.index} at byte {self.offset} is damaged "
                f"({self.problem}); {FIX}")


class DamagedRecordError(ValueError):
    """Reading stopped at a damaged record; str() is `DamagedRecord.message()`."""

    def __init__(self, record: DamagedRecord):
        super().__init__(record.message())
        self.record = record


@dataclasses.dataclass
class ShardScan:
    """What the walk over one shard found.

    good: (index, offset) of records whose framing and CRC are intact, in file order.
    damaged: records with broken framing or CRC (and, after `check_decoding`, records that
    do not decode), in index order.
    """

    path: str
    good: list[tuple[int, int]]
    damaged: list[DamagedRecord]

    @property
    def records(self) -> int:
        return len(self.good) + len(self.damaged)


def _masked_crc32c(data: bytes) -> int:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    return masked_crc32c(data)


def _random_reader(path: str):
    from tensorflow.python.lib.io import tf_record  # C++ reader checking the data CRC

    return tf_record.tf_record_random_reader(path)


def _framing_problem(header: bytes, offset: int, size: int) -> tuple[str | None, int]:
    """(problem or None, end offset of the record) from a record's header bytes."""
    if len(header) < HEADER_BYTES:
        return (f"the shard is truncated: {len(header)} of the {HEADER_BYTES} header bytes "
                "remain"), size
    length, length_crc = struct.unpack("<QI", header)
    if _masked_crc32c(header[:8]) != length_crc:
        return (f"{CRC_MISMATCH} of the length field; the remaining {size - offset} bytes of "
                "the shard cannot be read"), size
    end = offset + HEADER_BYTES + length + FOOTER_BYTES
    if end > size:
        return (f"the shard is truncated: the record needs "
                f"{length + HEADER_BYTES + FOOTER_BYTES} bytes, {size - offset} remain"), size
    return None, end


def scan_shard(path: str) -> ShardScan:
    """Walks every record of a local shard, checking framing and CRCs (not decoding)."""
    import tensorflow as tf

    size = os.path.getsize(path)
    good, damaged = [], []
    reader = _random_reader(path)
    with open(path, "rb") as f:
        offset = index = 0
        while offset < size:
            f.seek(offset)
            problem, end = _framing_problem(f.read(HEADER_BYTES), offset, size)
            if problem is None:
                try:
                    reader.read(offset)
                    good.append((index, offset))
                except tf.errors.DataLossError:
                    problem = CRC_MISMATCH
            if problem is not None:
                damaged.append(DamagedRecord(path, index, offset, problem))
            offset, index = end, index + 1
    return ShardScan(path, good, damaged)


def read_records(path: str, good: Sequence[tuple[int, int]]) -> Iterator[tuple[int, bytes]]:
    """(index, serialized record) of the given intact records of a shard."""
    reader = _random_reader(path)
    for index, offset in good:
        yield index, reader.read(offset)[0]


def decode_problem(serialized: bytes) -> str | None:
    """Why one record's Example would fail in the input pipeline, or None when it decodes.

    Same decoders as `schema.decode_example`: the image (JPEG/PNG/...), the label PNG, and
    their sizes must agree.
    """
    import tensorflow as tf

    from deeplab.data import schema

    try:
        example = tf.train.Example.FromString(serialized).features.feature
    except Exception as exc:  # protobuf raises DecodeError (a private type) and others
        return f"not a tf.train.Example: {exc}"
    shapes = []
    for key, what, decode in (
            (schema.IMAGE_ENCODED, "image", lambda b: tf.io.decode_image(
                b, channels=3, expand_animations=False)),
            (schema.LABEL_ENCODED, "label", lambda b: tf.io.decode_png(b, channels=1))):
        values = example[key].bytes_list.value if key in example else []
        if not values:
            return f"the Example has no {key}"
        try:
            shapes.append(tuple(decode(values[0]).shape[:2]))
        except tf.errors.OpError as exc:
            detail = (exc.message or type(exc).__name__).strip().splitlines()[0]
            return f"the {what} does not decode: {_TF_NOISE.sub('', detail)}"
    if shapes[0] != shapes[1]:
        return (f"the label is {shapes[1][0]}x{shapes[1][1]} but the image "
                f"{shapes[0][0]}x{shapes[0][1]} (HxW)")
    return None


def _decoding_indices(scan: ShardScan) -> set[int]:
    """Indices of the shard's intact records that decode, checked in parallel by tf.data
    (records that fail are dropped by ignore_errors; their absence names them)."""
    import tensorflow as tf

    from deeplab.data import schema

    records = tf.data.Dataset.from_generator(
        lambda: read_records(scan.path, scan.good),
        output_signature=(tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.string)))

    def check(index, serialized):
        element = schema.decode_example(serialized)
        return index, tf.shape(element["image"])[:2], tf.shape(element["label"])[:2]

    checked = records.map(check, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    return {int(i) for i, image, label in checked.as_numpy_iterator()
            if tuple(image) == tuple(label)}


def check_decoding(scan: ShardScan) -> ShardScan:
    """The scan with intact records that do not decode moved to `damaged` (with why)."""
    decoding = _decoding_indices(scan)
    failed = [(i, o) for i, o in scan.good if i not in decoding]
    if not failed:
        return scan
    offsets = dict(failed)
    undecodable = [DamagedRecord(scan.path, index, offsets[index],
                                 decode_problem(record) or "does not decode")
                   for index, record in read_records(scan.path, failed)]
    damaged = sorted(scan.damaged + undecodable, key=lambda r: r.index)
    return ShardScan(scan.path, [g for g in scan.good if g[0] in decoding], damaged)


@dataclasses.dataclass(frozen=True)
class SplitDamage:
    """Every shard's scan (framing, CRC and decoding) of a split."""

    shards: tuple[ShardScan, ...]

    @property
    def damaged(self) -> list[DamagedRecord]:
        return [r for s in self.shards for r in s.damaged]

    @property
    def records(self) -> int:
        """Records in the split, damaged ones included."""
        return sum(s.records for s in self.shards)

    def good_records(self, path: str) -> list[tuple[int, int]]:
        return next(s.good for s in self.shards if s.path == path)


def _file_key(files: Sequence[str]) -> tuple:
    return tuple((p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in files)


def each_with_progress(items: Sequence, desc: str) -> Iterator:
    """The items (shards), with a progress bar of those done on stderr."""
    from deeplab.utils.progress import Progress

    with Progress(len(items), desc) as bar:
        for item in items:
            yield item
            bar.update()


@functools.lru_cache(maxsize=8)
def _scan_split_cached(key: tuple) -> SplitDamage:
    files = [path for path, _, _ in key]
    shards = tuple(check_decoding(scan_shard(path))
                   for path in each_with_progress(files, "checking records (shards)"))
    damage = SplitDamage(shards)
    for record in damage.damaged:
        logging.warning("skipping %s", record.message().rsplit("; ", 1)[0])
    return damage


def scan_split(files: Sequence[str]) -> SplitDamage:
    """Scans every record of the shards (framing, CRC, decoding); each damaged record is
    named once in a warning. Cached while the files keep their size and mtime."""
    remote = [p for p in files if "://" in p]
    if remote:
        raise ValueError(f"{remote[0]}: {SKIP_FLAG} reads local shards only")
    return _scan_split_cached(_file_key(files))


def _offset_in(exc: BaseException) -> int | None:
    """The byte offset in TF's 'corrupted record at N' / 'truncated record at N'."""
    found = re.search(r"record at (\d+)", str(getattr(exc, "message", exc)))
    return int(found.group(1)) if found else None


def locate_damage(files: Sequence[str], exc: BaseException | None = None) \
        -> DamagedRecord | None:
    """The damaged record behind a tf.data error `exc`, or None when every record is fine.

    After a DataLossError (or with no error given) framing and CRC come first (fast), and
    the record whose offset TF's message names wins; then the decoding of each shard in
    order, stopping at the first shard with an undecodable record. After another error
    (a decode failure is InvalidArgumentError) the decoding is checked first.
    """
    import tensorflow as tf

    local = [p for p in files if "://" not in p]
    scans = [scan_shard(path) for path in local]
    framing = [r for s in scans for r in s.damaged]
    if framing and (exc is None or isinstance(exc, tf.errors.DataLossError)):
        offset = _offset_in(exc) if exc is not None else None
        named = [r for r in framing if offset in (r.offset, r.offset + HEADER_BYTES)]
        return (named or framing)[0]
    for scan in each_with_progress(scans, "finding the record that failed (shards)"):
        checked = check_decoding(scan)
        undecodable = [r for r in checked.damaged if r not in scan.damaged]
        if undecodable:
            return undecodable[0]
    return framing[0] if framing else None
