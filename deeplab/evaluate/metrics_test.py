"""Tests for the confusion matrix and the metrics derived from it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from deeplab.evaluate import metrics


def reference_matrix(labels, predictions, num_classes, ignore_label):
    """Independent count: one pixel at a time with np.add.at."""
    labels, predictions = np.ravel(labels), np.ravel(predictions)
    keep = labels != ignore_label
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels[keep], predictions[keep]), 1)
    return matrix


def reference_miou(matrix, ignore_label):
    """Loop over classes: IoU = TP / (TP + FP + FN), mean over classes with a non-zero union."""
    ious = []
    for c in range(matrix.shape[0]):
        if c == ignore_label:
            continue
        tp = matrix[c, c]
        fn = sum(matrix[c, j] for j in range(matrix.shape[0]) if j != c and j != ignore_label)
        fp = sum(matrix[i, c] for i in range(matrix.shape[0]) if i != c and i != ignore_label)
        if tp + fp + fn:
            ious.append(tp / (tp + fp + fn))
    return float(np.mean(ious))


def random_batch(rng, shape, num_classes, ignore_label, ignore_fraction=0.2):
    labels = rng.integers(0, num_classes, shape)
    labels[rng.random(shape) < ignore_fraction] = ignore_label
    # Predictions that agree with the labels half of the time, so IoUs are not all tiny.
    predictions = np.where(rng.random(shape) < 0.5, labels, rng.integers(0, num_classes, shape))
    predictions = np.where(predictions == ignore_label, 1, predictions) % num_classes
    return labels.astype(np.uint8), predictions.astype(np.int32)


DATASETS = [("pascal", 21, 255), ("cityscapes", 19, 255), ("ade20k", 151, 0)]


@pytest.mark.parametrize("name,num_classes,ignore_label", DATASETS)
def test_matches_independent_numpy(name, num_classes, ignore_label):
    rng = np.random.default_rng(0)
    labels, predictions = random_batch(rng, (2, 33, 41), num_classes, ignore_label)
    cm = metrics.ConfusionMatrix(num_classes, ignore_label)
    cm.update(labels, predictions)
    expected = reference_matrix(labels, predictions, num_classes, ignore_label)
    np.testing.assert_array_equal(cm.matrix, expected)
    assert cm.matrix.dtype == np.int64
    assert cm.matrix.sum() == np.sum(labels != ignore_label)
    result = cm.result()
    assert result.miou == pytest.approx(reference_miou(expected, ignore_label), abs=1e-12)
    keep = labels != ignore_label
    assert result.pixel_accuracy == pytest.approx(np.mean(labels[keep] == predictions[keep]))


def test_streaming_equals_one_shot():
    rng = np.random.default_rng(1)
    labels, predictions = random_batch(rng, (6, 17, 23), 21, 255)
    streamed = metrics.ConfusionMatrix(21, 255)
    for i in range(0, 6, 2):
        streamed.update(labels[i:i + 2], predictions[i:i + 2])
    one_shot = metrics.ConfusionMatrix(21, 255)
    one_shot.update(labels, predictions)
    np.testing.assert_array_equal(streamed.matrix, one_shot.matrix)
    assert streamed.result().miou == one_shot.result().miou
    streamed.reset()
    assert streamed.matrix.sum() == 0


def test_known_tiny_example():
    # 3 classes, ignore 255. Pixels (label -> prediction):
    #   0->0 x2, 0->1 x1, 1->1 x2, 1->2 x1, 2->2 x1, 2->0 x1, and two ignored pixels.
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 255, 255])
    predictions = np.array([0, 0, 1, 1, 1, 2, 2, 0, 2, 1])
    cm = metrics.ConfusionMatrix(3, ignore_label=255)
    cm.update(labels, predictions)
    np.testing.assert_array_equal(cm.matrix, [[2, 1, 0], [0, 2, 1], [1, 0, 1]])
    result = cm.result(("a", "b", "c"))
    # class 0: TP 2, FN 1, FP 1 -> 2/4; class 1: TP 2, FN 1, FP 1 -> 2/4; class 2: 1/(1+1+1).
    np.testing.assert_allclose(result.per_class_iou, [0.5, 0.5, 1 / 3])
    assert result.miou == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)
    assert result.pixel_accuracy == pytest.approx(5 / 8)
    np.testing.assert_allclose(result.per_class_accuracy, [2 / 3, 2 / 3, 1 / 2])
    assert result.mean_class_accuracy == pytest.approx((2 / 3 + 2 / 3 + 1 / 2) / 3)
    assert result.num_pixels == 8


def test_absent_classes_are_nan_and_left_out_of_the_mean():
    # Class 2 appears in neither labels nor predictions; class 3 only in predictions.
    matrix = np.array([[3, 0, 0, 1], [0, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    result = metrics.compute_metrics(matrix)
    assert math.isnan(result.per_class_iou[2])
    assert result.per_class_iou[3] == 0.0
    assert math.isnan(result.per_class_accuracy[3])
    assert result.counted.tolist() == [True, True, False, True]
    assert result.miou == pytest.approx((3 / 4 + 1 + 0) / 3)
    assert result.mean_class_accuracy == pytest.approx((3 / 4 + 1) / 2)


def test_ade20k_ignore_zero_leaves_class_zero_out():
    num_classes = 151
    labels = np.array([0, 0, 1, 1, 2, 150, 150])
    predictions = np.array([0, 5, 1, 0, 2, 150, 3])  # the model predicts 0 once on a valid pixel
    cm = metrics.ConfusionMatrix(num_classes, ignore_label=0)
    cm.update(labels, predictions)
    assert cm.matrix[0].sum() == 0  # ignored pixels are not counted
    assert cm.matrix[1, 0] == 1  # predicting 0 on a valid pixel is an error
    result = cm.result()
    assert not result.counted[0] and math.isnan(result.per_class_iou[0])
    assert result.counted.sum() == 4  # classes 1, 2, 3 (a false positive), 150
    assert result.miou == pytest.approx((1 / 2 + 1 + 0 + 1 / 2) / 4)
    assert result.pixel_accuracy == pytest.approx(3 / 5)
    # Even a matrix counted without the ignore rule drops the class-0 row.
    raw = metrics.confusion_matrix_np(labels, predictions, num_classes)
    assert metrics.compute_metrics(raw, ignore_label=0).miou == pytest.approx(result.miou)


def test_bad_values_raise_naming_them():
    cm = metrics.ConfusionMatrix(21, ignore_label=255)
    with pytest.raises(ValueError, match=r"label values outside \[0, 21\).*: 21, 200"):
        cm.update(np.array([0, 21, 200, 255]), np.array([0, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"prediction values outside \[0, 21\).*: -1"):
        cm.update(np.array([0, 1]), np.array([-1, 0]))
    with pytest.raises(ValueError, match="differ in shape"):
        cm.update(np.zeros((2, 3), np.int32), np.zeros((3, 2), np.int32))
    with pytest.raises(TypeError, match="integer dtype"):
        cm.update(np.zeros(3, np.float32), np.zeros(3, np.int32))
    with pytest.raises(ValueError, match=r"label values outside \[0, 151\).*: 255"):
        metrics.ConfusionMatrix(151, ignore_label=0).update(np.array([255]), np.array([1]))
    assert cm.matrix.sum() == 0  # a failed update adds nothing


def test_accepts_tf_tensors_and_channel_axis():
    labels = np.array([[[[1], [2]], [[255], [0]]]], np.uint8)  # [1, 2, 2, 1]
    predictions = np.array([[[1, 2], [0, 0]]], np.int64)  # [1, 2, 2]
    cm = metrics.ConfusionMatrix(3, 255)
    cm.update(tf.constant(labels), tf.constant(predictions))
    np.testing.assert_array_equal(cm.matrix, np.eye(3, dtype=np.int64))


def test_table_and_json():
    labels = np.array([1, 1, 2, 0, 0])
    predictions = np.array([1, 2, 2, 1, 1])
    cm = metrics.ConfusionMatrix(4, ignore_label=0)
    cm.update(labels, predictions)
    result = cm.result(("other", "wall", "building", "sky"))
    text = result.table()
    assert "building" in text and "(ignored)" in text and "mIoU" in text
    sky_line = next(line for line in text.splitlines() if " sky " in line)
    assert " - " in sky_line  # absent class
    data = json.loads(result.to_json())
    assert data["per_class_iou"]["sky"] is None and data["per_class_iou"]["other"] is None
    assert data["per_class_iou"]["wall"] == pytest.approx(0.5)
    assert data["miou"] == pytest.approx(0.5)
    assert data["num_pixels"] == 3 and data["ignore_label"] == 0


def test_compute_metrics_checks_its_input():
    with pytest.raises(ValueError, match="square"):
        metrics.compute_metrics(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        metrics.compute_metrics(np.eye(3, dtype=np.int64), ("a", "b"))
    empty = metrics.compute_metrics(np.zeros((3, 3), np.int64))
    assert math.isnan(empty.miou) and math.isnan(empty.pixel_accuracy)
    assert json.loads(empty.to_json())["miou"] is None
