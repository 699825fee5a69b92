"""Evaluation over a split: counting, crop cutting, predictor parity, errors, outputs."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.checkpoints.io import CheckpointError, model_checkpoint
from deeplab.data.descriptors import get_descriptor
from deeplab.datasets.synthetic import generate_example, write_synthetic_dataset
from deeplab.evaluate import evaluator, summaries
from deeplab.evaluate.metrics import ConfusionMatrix
from deeplab.inference.checkpoint_model import CheckpointModel
from deeplab.model.deeplab import build_model
from deeplab.model.layer_walk import all_layers
from deeplab.model.options import ModelOptions

SIZE = (40, 56)
NUM_VAL = 4


def calibrated_model(options: ModelOptions, seed: int = 0) -> keras.Model:
    """A random network whose BatchNorm statistics are those of synthetic val images.

    Freshly initialised, its logits vanish and every pixel ties at class 0, so comparisons of
    labels would prove nothing; calibrated on real images, its labels vary.
    """
    from deeplab.export.testing import redraw_logits

    keras.utils.set_random_seed(seed)
    model = build_model(options)
    redraw_logits(model, seed)
    images = np.stack([generate_example(i, "val", SIZE)[0] for i in range(3)])
    norms = [layer for layer in all_layers(model)
             if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(images.astype(np.float32), training=True)
    for layer, momentum in zip(norms, momenta, strict=True):
        layer.momentum = momentum
    return model


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(dataset_dir, descriptor) of a tiny synthetic dataset: 4 val images of 40x56."""
    path = str(tmp_path_factory.mktemp("synthetic"))
    return path, write_synthetic_dataset(path, num_train=1, num_val=NUM_VAL, image_size=SIZE,
                                         num_shards=2)


@pytest.fixture(scope="module")
def predictor(data):
    options = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.5,
                           num_classes=data[1].num_classes)
    return CheckpointModel(calibrated_model(options), options)


def red_is_class_one(images):
    """A fake probabilities function: class 1 where red > 127, else class 0 (6 classes)."""
    classes = tf.cast(images[..., 0] > 127.0, tf.int32)
    return tf.one_hot(classes, 6, dtype=tf.float32)


def expected_matrix(ignore_label=255):
    matrix = ConfusionMatrix(6, ignore_label)
    for i in range(NUM_VAL):
        image, label = generate_example(i, "val", SIZE)
        matrix.update(label.astype(np.int64), (image[..., 0] > 127).astype(np.int64))
    return matrix.matrix


@pytest.mark.parametrize("crop,batch", [(None, 1), ((48, 64), 3)])
def test_counts_equal_a_hand_built_matrix_and_padding_never_counts(data, crop, batch):
    dataset_dir, descriptor = data
    # Pad labels with 0 (a real class), so uncut padding would add background pixels.
    options = dataclasses.replace(evaluator.eval_input_options(descriptor, crop),
                                  ignore_label=0)
    evaluation = evaluator.run_evaluation(red_is_class_one, dataset_dir, "val", descriptor,
                                          options, batch, progress=False)
    np.testing.assert_array_equal(evaluation.matrix, expected_matrix())
    assert evaluation.matrix.dtype == np.int64
    assert evaluation.num_images == NUM_VAL
    assert evaluation.result.class_names[1] == "red_hstripes"
    assert evaluation.result.num_pixels == int(expected_matrix().sum())


def test_predictions_come_back_at_image_size(data):
    dataset_dir, descriptor = data
    options = evaluator.eval_input_options(descriptor, (48, 64))
    items = list(evaluator.predict_split(red_is_class_one, dataset_dir, "val", options, 3))
    assert [item.filename for item in items] == [f"val_{i:05d}" for i in range(NUM_VAL)]
    for i, item in enumerate(items):
        image, label = generate_example(i, "val", SIZE)
        assert item.prediction.shape == item.label.shape == SIZE
        np.testing.assert_array_equal(item.label, label)
        np.testing.assert_array_equal(item.image, image)


def test_split_and_single_image_give_the_same_labels(data, predictor):
    dataset_dir, descriptor = data
    options = evaluator.eval_input_options(descriptor, None, "mobilenet_v2")
    items = list(evaluator.predict_split(predictor, dataset_dir, "val", options))
    assert len(np.unique(np.concatenate([item.prediction for item in items]))) > 1
    for i, item in enumerate(items):
        image, _ = generate_example(i, "val", SIZE)
        single = predictor.labels(image[None].astype(np.float32))[0]
        np.testing.assert_array_equal(item.prediction, single)


def test_exported_style_runner_gets_uint8_single_images():
    calls = []

    def runner(images):
        calls.append((images.dtype, images.shape))
        return np.full(images.shape[:3] + (2,), 0.5, np.float32)

    out = evaluator.single_image_fn(runner)(np.full((3, 5, 7, 3), 200.0, np.float32))
    assert out.shape == (3, 5, 7, 2) and out.dtype == np.float32
    assert calls == [(np.uint8, (1, 5, 7, 3))] * 3


def test_class_count_mismatches_are_one_line_errors(data, predictor, tmp_path):
    dataset_dir, descriptor = data
    prefix = model_checkpoint(predictor.keras_model).write(str(tmp_path / "ckpt"))
    evaluator.check_checkpoint_classes(prefix, descriptor)  # fits
    with pytest.raises(CheckpointError, match=r"6 classes but dataset 'ade20k' has 151") as err:
        evaluator.check_checkpoint_classes(prefix, get_descriptor("ade20k"))
    assert "\n" not in str(err.value)
    three = lambda images: tf.zeros(tf.concat([tf.shape(images)[:3], [3]], 0))
    with pytest.raises(ValueError, match="predicts 3 classes but the dataset has 6"):
        evaluator.run_evaluation(three, dataset_dir, "val", descriptor,
                                 evaluator.eval_input_options(descriptor, None), progress=False)


def test_data_errors_name_the_split_in_one_line(data):
    dataset_dir, descriptor = data
    with pytest.raises(ValueError, match=r"larger than the eval crop 32x32") as err:
        evaluator.run_evaluation(red_is_class_one, dataset_dir, "val", descriptor,
                                 evaluator.eval_input_options(descriptor, (32, 32)),
                                 progress=False)
    assert str(err.value).startswith(os.path.join(dataset_dir, "val-*"))
    assert "\n" not in str(err.value) and "function_node" not in str(err.value)
    with pytest.raises(ValueError, match="no TFRecord shards"):
        evaluator.run_evaluation(red_is_class_one, dataset_dir, "test", descriptor,
                                 evaluator.eval_input_options(descriptor, None), progress=False)


def _event_tags(logdir):
    tags = set()
    for name in os.listdir(logdir):
        if name.startswith("events.out.tfevents"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, name)):
                tags.update((v.tag, event.step) for v in event.summary.value)
    return tags


def test_outputs_json_plots_and_tensorboard(data, tmp_path):
    dataset_dir, descriptor = data
    evaluation = evaluator.run_evaluation(red_is_class_one, dataset_dir, "val", descriptor,
                                          evaluator.eval_input_options(descriptor, None),
                                          progress=False)
    logdir = str(tmp_path / "eval")
    with summaries.EvalOutputs(logdir, summaries.miou_tag([0.5, 1.0], True)) as outputs:
        paths = outputs.write(evaluation, 7, {"checkpoint": "ckpt-7"})
    names = sorted(os.path.basename(p) for p in paths)
    assert names == ["confusion_matrix.png", "metrics-7.json", "metrics.json",
                     "per_class_iou.png"]
    with open(os.path.join(logdir, "metrics-7.json")) as f:
        saved = json.load(f)
    assert saved["checkpoint"] == "ckpt-7" and saved["step"] == 7
    assert saved["num_images"] == NUM_VAL
    assert saved["miou"] == pytest.approx(evaluation.result.miou)
    assert np.array_equal(saved["confusion_matrix"], evaluation.matrix)
    assert set(saved["per_class_iou"]) == set(descriptor.class_names)
    tags = _event_tags(logdir)
    for tag in ("miou_0.5_1.0_flipped", "eval/miou", "eval/pixel_accuracy",
                "eval/class_iou/01_red_hstripes", "eval/per_class_iou", "eval/confusion_matrix",
                "eval/table"):
        assert (tag, 7) in tags, tag


def test_skipping_damaged_records_evaluates_the_rest_and_says_so(data, tmp_path):
    import shutil

    from deeplab.data import pipeline
    from deeplab.data.record_scan_test import write_damaged_split

    folder = str(tmp_path / "damaged")
    shutil.copytree(data[0], folder)
    damaged = write_damaged_split(folder, "val", per_shard=4, late=1)
    descriptor = data[1]
    classes = descriptor.num_classes
    background = lambda images: tf.one_hot(tf.zeros(tf.shape(images)[:3], tf.int32), classes)  # noqa: E731
    options = evaluator.eval_input_options(descriptor, skip_damaged_records=True)
    evaluation = evaluator.run_evaluation(background, folder, "val", descriptor, options,
                                          progress=False)
    assert evaluation.num_images == 5 and evaluation.skipped_records == len(damaged) == 3
    assert evaluation.to_dict()["damaged_records_skipped"] == 3
    assert evaluation.summary().endswith("3 damaged record(s) could not be evaluated: the "
                                         "metrics are over the other 5 images")
    # Every labelled pixel of the 5 intact records counted as predicted background.
    labels = [b["label"].numpy() for b in pipeline.make_dataset(folder, "val", 1, options, False)]
    labels = np.concatenate([x.ravel() for x in labels])
    expected = np.bincount(labels[labels != descriptor.ignore_label], minlength=classes)
    np.testing.assert_array_equal(evaluation.matrix[:, 0], expected)
    # Without skipping: the first damaged record in file order, in one line.
    with pytest.raises(ValueError, match="^" + re.escape(damaged[0].message()) + "$"):
        evaluator.run_evaluation(background, folder, "val", descriptor,
                                 evaluator.eval_input_options(descriptor), progress=False)


def test_each_checkpoint_of_a_run_is_evaluated_with_its_own_weights(data, tmp_path):
    """The network is built once; later checkpoints are restored into it and its folded
    prediction weights taken again (a stale fold would score the first checkpoint again)."""
    from deeplab.checkpoints.io import load_model

    dataset_dir, descriptor = data
    options = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.5,
                           num_classes=descriptor.num_classes)
    first = model_checkpoint(calibrated_model(options, seed=0)).write(str(tmp_path / "a"))
    second = model_checkpoint(calibrated_model(options, seed=1)).write(str(tmp_path / "b"))
    models = evaluator.CheckpointPredictors(descriptor, evaluator.InferenceOptions(),
                                            load_model, lambda prefix: options)
    image = generate_example(0, "val", SIZE)[0][None].astype(np.float32)
    got_first = models.load(first)(image)
    got_second = models.load(second)(image)
    fresh = CheckpointModel(load_model(options, second), options)(image)
    assert np.abs(got_first - got_second).max() > 1e-3
    np.testing.assert_allclose(got_second, fresh, atol=1e-5)
