"""Facts about a split's TFRecord shards read from the files: records present, shard sets.

TFRecord framing (per record): uint64 length, uint32 masked CRC of the length, `length`
bytes of data, uint32 masked CRC of the data. Counting walks the length fields and seeks
over the data, so it reads 12 bytes per record (a 1449-record VOC val split: milliseconds).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Sequence

_SHARD = re.compile(r"-(\d{5})-of-(\d{5})(\.tfrecord)?$")


def count_records(path: str) -> int:
    """Number of records in a local TFRecord file; ValueError if it is cut short."""
    count = 0
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                return count
            if len(header) < 12:
                raise ValueError(f"{path}: truncated TFRecord header after {count} records")
            (length,) = struct.unpack("<Q", header[:8])
            end = f.tell() + length + 4
            if end > size:
                raise ValueError(f"{path}: truncated TFRecord after {count} records")
            f.seek(end)
            count += 1


def count_split_records(files: Sequence[str]) -> int | None:
    """Records in these shards, or None when they cannot be counted cheaply (remote files,
    damaged framing)."""
    if any("://" in path for path in files):
        return None
    try:
        return sum(count_records(path) for path in files)
    except (OSError, ValueError):
        return None


def check_one_shard_count(files: Sequence[str]) -> None:
    """ValueError when shards of two conversions (`-of-00002` beside `-of-00004`) mix."""
    counts = sorted({m.group(2) for m in map(_SHARD.search, files) if m})
    if len(counts) > 1:
        raise ValueError(f"{os.path.dirname(files[0]) or '.'}: the split has shards of "
                         f"{len(counts)} conversions (-of-{' and -of-'.join(counts)}), which "
                         "would read examples twice: run the converter again (it finishes "
                         "an interrupted replacement) or remove the older set")
