import numpy as np
import pytest
import tensorflow as tf

from deeplab.data import pipeline
from deeplab.datasets import synthetic

OPTIONS = pipeline.InputOptions(crop_size=(33, 41), ignore_label=255)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("synthetic"))
    synthetic.write_synthetic_dataset(directory, num_train=12, num_val=5, image_size=(24, 32),
                                      num_shards=2)
    return directory


def _batches(ds, count):
    return [{k: v.numpy() for k, v in batch.items()} for batch in ds.take(count)]


def test_missing_shards_name_the_pattern(tmp_path):
    with pytest.raises(ValueError, match=rf"no TFRecord shards match '{tmp_path}/test-\*'"):
        pipeline.make_dataset(str(tmp_path), "test", 2, OPTIONS, training=True)


def test_training_batches_shapes_types_and_repeat(data_dir):
    ds = pipeline.make_dataset(data_dir, "train", 5, OPTIONS, training=True, seed=3)
    batches = _batches(ds, 4)  # 20 examples > 12: repeated
    for batch in batches:
        assert batch["image"].shape == (5, 33, 41, 3) and batch["image"].dtype == np.float32
        assert batch["label"].shape == (5, 33, 41, 1) and batch["label"].dtype == np.int32
        assert batch["filename"].shape == (5,) and batch["height"].tolist() == [24] * 5
        assert batch["width"].dtype == np.int32 and batch["width"].tolist() == [32] * 5
        assert 0 <= batch["image"].min() and batch["image"].max() <= 255
        assert set(np.unique(batch["label"])) <= set(range(6)) | {255}
    names = {n for b in batches for n in b["filename"].tolist()}
    assert len(names) == 12


def test_training_is_deterministic_under_a_seed(data_dir):
    make = lambda seed: pipeline.make_dataset(data_dir, "train", 4, OPTIONS, training=True,
                                              seed=seed, num_parallel_calls=2)
    a, b, c = _batches(make(7), 5), _batches(make(7), 5), _batches(make(8), 5)
    for x, y in zip(a, b, strict=True):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    assert any(not np.array_equal(x["image"], y["image"]) for x, y in zip(a, c, strict=True))


def test_eval_keeps_file_order_pads_and_keeps_last_batch(data_dir):
    options = pipeline.InputOptions(crop_size=(25, 33))
    batches = _batches(pipeline.make_dataset(data_dir, "val", 2, options, training=False), 10)
    assert [len(b["filename"]) for b in batches] == [2, 2, 1]
    names = [n.decode() for b in batches for n in b["filename"]]
    assert names == [f"val_{i:05d}" for i in range(5)]
    first = batches[0]
    assert first["image"].shape == (2, 25, 33, 3)
    assert (first["label"][:, 24] == 255).all() and (first["image"][:, :, 32] == 127.5).all()
    assert first["height"].tolist() == [24, 24] and first["width"].tolist() == [32, 32]


def test_eval_without_crop_needs_batch_one(data_dir):
    options = pipeline.InputOptions(crop_size=None)
    with pytest.raises(ValueError, match="batch_size must be 1"):
        pipeline.make_dataset(data_dir, "val", 2, options, training=False)
    batch = _batches(pipeline.make_dataset(data_dir, "val", 1, options, training=False), 1)[0]
    assert batch["image"].shape == (1, 24, 32, 3)
    with pytest.raises(ValueError, match="training needs options.crop_size"):
        pipeline.make_dataset(data_dir, "train", 1, options, training=True)


@pytest.mark.parametrize("num_shards", [1, 2])
def test_workers_read_disjoint_parts(tmp_path, num_shards):
    directory = str(tmp_path)
    synthetic.write_synthetic_dataset(directory, num_train=2, num_val=7, image_size=(16, 16),
                                      num_shards=num_shards)
    options = pipeline.InputOptions(crop_size=(16, 16))
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker,
                                             num_replicas_in_sync=2)
        ds = pipeline.make_dataset(directory, "val", 4, options, training=False,
                                   input_context=context)
        batches = _batches(ds, 10)
        assert max(len(b["filename"]) for b in batches) == 2  # per-replica batch 4 / 2
        seen += [n.decode() for b in batches for n in b["filename"]]
    assert sorted(seen) == [f"val_{i:05d}" for i in range(7)]
