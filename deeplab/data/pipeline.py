"""The tf.data input pipeline: shards -> decoded, augmented, batched examples.

    options = InputOptions(crop_size=(513, 513), ignore_label=255)
    ds = make_dataset("/data/voc", "train_aug", batch_size=8, options=options, training=True)
    batch = next(iter(ds))   # {"image": [8, 513, 513, 3] float32 0..255, "label": ..., ...}
"""

from __future__ import annotations

import os
import random

import tensorflow as tf

from deeplab.data import augment, record_scan, schema, shards
from deeplab.data.input_options import InputOptions  # noqa: F401  (its home before)


def list_shards(dataset_dir: str, split: str) -> list[str]:
    """Sorted shard paths of `split`; ValueError naming the glob pattern when none exist or
    when shards of two conversions (two shard counts) lie side by side."""
    pattern = os.path.join(dataset_dir, schema.shard_pattern(split))
    files = sorted(f for f in tf.io.gfile.glob(pattern) if not f.endswith(".tmp"))
    if not files:
        raise ValueError(f"no TFRecord shards match {pattern!r}: convert the dataset first "
                         f"(see datasets/) or check --dataset_dir and the split name")
    shards.check_one_shard_count(files)
    return files


def split_size(dataset_dir: str, split: str, descriptor=None) -> int | None:
    """Examples in the split: the records present in its shards (counted cheaply), else the
    descriptor's count, else None. For progress bars: a descriptor's nominal size (VOC val
    1449) is wrong for a dataset_dir holding only some of the records."""
    try:
        counted = shards.count_split_records(list_shards(dataset_dir, split))
    except ValueError:
        counted = None
    if counted is not None:
        return counted
    return descriptor.splits.get(split) if descriptor is not None else None


def _shard_for_workers(files, input_context):
    """A dataset of file names, this pipeline's share when there are several workers.

    Returns (dataset, shard_records): if there are fewer files than pipelines, every pipeline
    reads all files and keeps every n-th record instead.
    """
    ds = tf.data.Dataset.from_tensor_slices(files)
    if input_context is None or input_context.num_input_pipelines <= 1:
        return ds, False
    n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(files) >= n:
        return ds.shard(n, i), False
    return ds, True


def damage_of(files, options: InputOptions) -> record_scan.SplitDamage | None:
    """The split's scan when options.skip_damaged_records, else None (cached per files)."""
    return record_scan.scan_split(files) if options.skip_damaged_records else None


def _intact_reader(damage: record_scan.SplitDamage):
    """shard path (string tensor) -> dataset of its intact records (serialized)."""
    def records(path):
        path = path.decode()
        for _, record in record_scan.read_records(path, damage.good_records(path)):
            yield record

    def read(path):
        return tf.data.Dataset.from_generator(
            records, args=(path,), output_signature=tf.TensorSpec((), tf.string))

    return read


def _read_records(files, training, seed, input_context, num_parallel_calls, damage=None):
    ds, shard_records = _shard_for_workers(files, input_context)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    reader = tf.data.TFRecordDataset
    if damage is not None and damage.damaged:
        reader = _intact_reader(damage)
    ds = ds.interleave(
        reader,
        cycle_length=min(len(files), 4) if training else 1,
        num_parallel_calls=num_parallel_calls,
        deterministic=True,
    )
    if shard_records:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    return ds


def _per_pipeline_batch(batch_size, input_context) -> int:
    if input_context is None:
        return batch_size
    return input_context.get_per_replica_batch_size(batch_size)


def make_dataset(
    dataset_dir: str,
    split: str,
    batch_size: int,
    options: InputOptions,
    training: bool,
    seed: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    repeat: int | None = None,
) -> tf.data.Dataset:
    """Reads `dataset_dir/<split>-*` and yields preprocessed batches.

    Args:
      dataset_dir: directory of shards written by the converters in datasets/.
      split: split name, e.g. "train_aug", "val".
      batch_size: global batch size; under tf.distribute (input_context given) each input
        pipeline batches input_context.get_per_replica_batch_size(batch_size).
      options: InputOptions.
      training: True for random scale/pad/crop/flip to options.crop_size, shuffling and
        dropping the last partial batch; False for eval preprocessing in file order.
      seed: makes shuffling and augmentation reproducible (same seed -> same batches);
        None draws a random one.
      input_context: from strategy.distribute_datasets_from_function; shards are split
        across input pipelines (whole files when there are enough, records otherwise).
      num_parallel_calls: parallelism of reading and decoding/augmentation.
      repeat: number of epochs; None repeats forever when training, once in eval.

    Returns:
      Batches {"image": float32 [B, h, w, 3] pixel values 0..255, "label": int32
      [B, h, w, 1], "filename": string [B], "height": int32 [B], "width": int32 [B]}, where
      (h, w) is the crop size (training, or eval with crop_size) or the image size (eval
      with crop_size None, B = 1), and height/width are the image size before scaling and
      padding (after the optional min/max resize).
    """
    if training and options.crop_size is None:
        raise ValueError("training needs options.crop_size")
    if not training and options.crop_size is None and batch_size != 1:
        raise ValueError("eval without a crop size keeps images whole: batch_size must be 1")
    files = list_shards(dataset_dir, split)
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    pipeline_id = input_context.input_pipeline_id if input_context is not None else 0
    ds = _read_records(files, training, seed, input_context, num_parallel_calls,
                       damage_of(files, options))
    if training:
        ds = ds.shuffle(options.shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    epochs = (-1 if training else 1) if repeat is None else repeat
    if epochs != 1:
        ds = ds.repeat(epochs)
    ds = ds.enumerate()

    def preprocess(index, serialized):
        element = schema.decode_example(serialized)
        if training:
            element_seed = tf.stack([tf.cast(seed, tf.int64) * 1024 + pipeline_id, index])
            image, label, size = augment.preprocess_for_train(
                element["image"], element["label"], options, element_seed)
        else:
            image, label, size = augment.preprocess_for_eval(
                element["image"], element["label"], options, element["filename"])
        return {"image": image, "label": label, "filename": element["filename"],
                "height": size[0], "width": size[1]}

    ds = ds.map(preprocess, num_parallel_calls=num_parallel_calls, deterministic=True)
    ds = ds.batch(_per_pipeline_batch(batch_size, input_context), drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
