"""Damaged shards made from real ones (a flipped byte, a cut shard, an intact record holding
a non-image) are found and named exactly; the helpers here make them for the CLI tests."""

from __future__ import annotations

import logging
import os
import shutil

import pytest
import tensorflow as tf

from deeplab.data import pipeline, record_scan, schema
from deeplab.data.record_scan import HEADER_BYTES, DamagedRecord

TRUNCATED_KEEP = 20  # bytes of the cut record left in the shard


def _non_image(serialized: bytes) -> bytes:
    """The record with its image bytes replaced by text (CRC of the new record intact)."""
    example = tf.train.Example.FromString(serialized)
    example.features.feature[schema.IMAGE_ENCODED].bytes_list.value[0] = b"not an image"
    return example.SerializeToString()


def _write(path: str, records) -> None:
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)


def _offsets(path: str) -> list[int]:
    return [offset for _, offset in record_scan.scan_shard(path).good]


def flip_byte(path: str, index: int) -> DamagedRecord:
    """Flips one bit in the data of record `index`; returns the record as it will be named."""
    offset = _offsets(path)[index]
    with open(path, "r+b") as f:
        f.seek(offset + HEADER_BYTES + 10)
        byte = f.read(1)[0]
        f.seek(offset + HEADER_BYTES + 10)
        f.write(bytes([byte ^ 0x10]))
    return DamagedRecord(path, index, offset, "CRC mismatch")


def cut_last_record(path: str) -> DamagedRecord:
    """Truncates the shard TRUNCATED_KEEP bytes into its last record."""
    offsets = _offsets(path)
    needed = os.path.getsize(path) - offsets[-1]
    with open(path, "r+b") as f:
        f.truncate(offsets[-1] + TRUNCATED_KEEP)
    return DamagedRecord(path, len(offsets) - 1, offsets[-1], (
        f"the shard is truncated: the record needs {needed} bytes, {TRUNCATED_KEEP} remain"))


def put_non_image(path: str, index: int) -> DamagedRecord:
    """Rewrites the shard with record `index`'s image replaced by text."""
    records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    records[index] = _non_image(records[index])
    _write(path, records)
    problem = record_scan.decode_problem(records[index])
    assert problem.startswith("the image does not decode: ")
    return DamagedRecord(path, index, _offsets(path)[index], problem)


def write_damaged_split(folder: str, split: str, per_shard: int,
                        late: int) -> list[DamagedRecord]:
    """Rewrites the split's two shards with `per_shard` records each (the split's records
    repeated), then damages them: shard 0 record `late` gets a flipped byte, shard 1 record
    `late - 1` a non-image, shard 1 is cut in its last record. Returns the three damaged
    records in file order (as the scanner names them)."""
    files = pipeline.list_shards(folder, split)
    assert len(files) == 2 and 1 <= late < per_shard - 1
    records = [r.numpy() for r in tf.data.TFRecordDataset(files)]
    for i, path in enumerate(files):
        _write(path, [records[(i * per_shard + j) % len(records)] for j in range(per_shard)])
    return [flip_byte(files[0], late), put_non_image(files[1], late - 1),
            cut_last_record(files[1])]


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    from datasets.synthetic import write_synthetic_dataset

    folder = str(tmp_path_factory.mktemp("healthy"))
    write_synthetic_dataset(folder, num_train=1, num_val=6, image_size=(24, 24))
    return folder


def _copy(healthy, tmp_path) -> str:
    folder = str(tmp_path / "data")
    shutil.copytree(healthy, folder)
    return folder


def _eval_images(folder, skip=False) -> int:
    options = pipeline.InputOptions(crop_size=None, skip_damaged_records=skip)
    return sum(1 for _ in pipeline.make_dataset(folder, "val", 1, options, training=False))


def test_healthy_split_has_no_damage(healthy):
    files = pipeline.list_shards(healthy, "val")
    damage = record_scan.scan_split(files)
    assert damage.damaged == [] and damage.records == 6
    assert record_scan.locate_damage(files) is None


@pytest.mark.parametrize("kind", ["flip", "cut", "non_image"])
def test_each_kind_stops_the_pipeline_and_is_located_exactly(healthy, tmp_path, kind):
    folder = _copy(healthy, tmp_path)
    files = pipeline.list_shards(folder, "val")
    expected = {"flip": lambda: flip_byte(files[1], 1), "cut": lambda: cut_last_record(files[1]),
                "non_image": lambda: put_non_image(files[0], 2)}[kind]()
    with pytest.raises((tf.errors.DataLossError, tf.errors.InvalidArgumentError)) as caught:
        _eval_images(folder)
    assert record_scan.locate_damage(files, caught.value) == expected
    assert str(record_scan.DamagedRecordError(expected)) == (
        f"{expected.shard}: record {expected.index} at byte {expected.offset} is damaged "
        f"({expected.problem}); re-convert the split or pass --skip_damaged_records")


def test_the_record_tf_names_is_the_one_reported(healthy, tmp_path):
    folder = _copy(healthy, tmp_path)
    files = pipeline.list_shards(folder, "val")
    undecodable = put_non_image(files[1], 0)
    first, second = flip_byte(files[0], 0), flip_byte(files[1], 2)
    error = tf.errors.DataLossError(None, None, f"corrupted record at {second.offset + 12}")
    assert record_scan.locate_damage(files, error) == second
    assert record_scan.locate_damage(files) == first
    # A decode failure (InvalidArgumentError) names the undecodable record, not a CRC one.
    error = tf.errors.InvalidArgumentError(None, None, "Unknown image file format")
    assert record_scan.locate_damage(files, error) == undecodable


def test_skip_mode_reads_only_intact_records_and_names_each_once(healthy, tmp_path, caplog):
    folder = _copy(healthy, tmp_path)
    expected = write_damaged_split(folder, "val", per_shard=5, late=2)
    files = pipeline.list_shards(folder, "val")
    with caplog.at_level(logging.WARNING):
        damage = record_scan.scan_split(files)
        assert damage.damaged == expected and damage.records == 10
        assert _eval_images(folder, skip=True) == 7
        assert _eval_images(folder, skip=True) == 7  # a second pass: no new warning
    for record in expected:
        assert caplog.text.count(f"skipping {record.shard}: record {record.index} at") == 1


def test_damaged_length_field_loses_the_rest_of_the_shard(healthy, tmp_path):
    folder = _copy(healthy, tmp_path)
    path = pipeline.list_shards(folder, "val")[0]
    offsets, size = _offsets(path), os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(offsets[1] + 1)
        f.write(b"\x7f")
    scan = record_scan.scan_shard(path)
    assert scan.good == [(0, 0)] and scan.damaged == [DamagedRecord(
        path, 1, offsets[1], f"CRC mismatch of the length field; the remaining "
        f"{size - offsets[1]} bytes of the shard cannot be read")]


def test_a_shard_cut_inside_a_header_is_named_though_tf_reads_it_as_ended(healthy, tmp_path):
    folder = _copy(healthy, tmp_path)
    path = pipeline.list_shards(folder, "val")[1]
    offsets = _offsets(path)
    with open(path, "r+b") as f:
        f.truncate(offsets[-1] + 5)
    assert sum(1 for _ in tf.data.TFRecordDataset(path)) == len(offsets) - 1  # no error
    assert record_scan.scan_shard(path).damaged == [DamagedRecord(
        path, len(offsets) - 1, offsets[-1], "the shard is truncated: 5 of the 12 header "
        "bytes remain")]
