import os

import pytest
import tensorflow as tf

from deeplab.data import descriptors, pipeline, shards


def _shard(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return str(path)


def test_count_records_walks_the_framing(tmp_path):
    path = _shard(tmp_path / "val-00000-of-00001.tfrecord", [b"a" * n for n in (0, 5, 300)])
    assert shards.count_records(path) == 3
    assert shards.count_records(_shard(tmp_path / "empty", [])) == 0
    data = open(path, "rb").read()
    (tmp_path / "cut").write_bytes(data[:-3])
    with pytest.raises(ValueError, match="cut: truncated TFRecord after 2 records"):
        shards.count_records(str(tmp_path / "cut"))
    assert shards.count_split_records([str(tmp_path / "cut")]) is None


def test_progress_total_is_the_records_present_not_the_nominal_size(tmp_path):
    from deeplab.evaluate import evaluator

    voc = descriptors.get_descriptor("pascal_voc_seg")  # says val has 1449 images
    _shard(tmp_path / "val-00000-of-00002.tfrecord", [b"x", b"y"])
    _shard(tmp_path / "val-00001-of-00002.tfrecord", [b"z"])
    assert evaluator.split_size(str(tmp_path), "val", voc) == 3
    assert pipeline.split_size(str(tmp_path), "val", voc) == 3
    os.remove(tmp_path / "val-00001-of-00002.tfrecord")
    (tmp_path / "val-00001-of-00002.tfrecord").write_bytes(b"\x05")  # damaged: nominal size
    assert evaluator.split_size(str(tmp_path), "val", voc) == 1449


def test_two_shard_counts_side_by_side_are_refused(tmp_path):
    _shard(tmp_path / "train-00000-of-00001.tfrecord", [b"x"])
    assert pipeline.list_shards(str(tmp_path), "train")
    _shard(tmp_path / "train-00000-of-00002.tfrecord", [b"x"])
    with pytest.raises(ValueError, match=r"shards of 2 conversions \(-of-00001 and -of-00002\)"):
        pipeline.list_shards(str(tmp_path), "train")
