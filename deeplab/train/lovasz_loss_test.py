"""Lovasz-softmax against the definition of the Lovasz extension, evaluated set by set."""

from __future__ import annotations

import numpy as np
import pytest

from deeplab.train.loss_terms import LossSpec
from deeplab.train.lovasz_loss import LovaszSoftmax

C, IGNORE = 4, 255


def np_softmax(logits):
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def jaccard_loss(mispredicted: set, foreground: set) -> float:
    """The set function: |M| / |F u M|."""
    union = foreground | mispredicted
    return len(mispredicted) / len(union) if union else 0.0


def lovasz_extension(errors, foreground: set) -> float:
    """sum_i e_(i) (J(S_i) - J(S_(i-1))), S_i the i pixels of largest error."""
    order = sorted(range(len(errors)), key=lambda i: -errors[i])
    total, chosen, previous = 0.0, set(), 0.0
    for i in order:
        chosen.add(i)
        current = jaccard_loss(chosen, foreground)
        total += errors[i] * (current - previous)
        previous = current
    return total


def np_lovasz(logits, labels, per_image, classes="present"):
    groups = [(logits[b], labels[b]) for b in range(len(logits))] if per_image else [
        (logits, labels)]
    results = []
    for group_logits, group_labels in groups:
        y = group_labels[..., 0].reshape(-1)
        p = np_softmax(group_logits.astype(np.float64)).reshape(-1, C)
        p, y = p[y != IGNORE], y[y != IGNORE]
        per_class = []
        for c in range(C):
            foreground = set(np.flatnonzero(y == c))
            if classes == "present" and not foreground:
                continue
            errors = np.abs((y == c).astype(np.float64) - p[:, c])
            per_class.append(lovasz_extension(errors, foreground))
        if per_class:
            results.append(np.mean(per_class))
    return np.mean(results)


@pytest.fixture
def batch():
    rng = np.random.RandomState(5)
    logits = rng.normal(size=(2, 5, 6, C)).astype(np.float32) * 2
    labels = rng.randint(0, C - 1, size=(2, 5, 6, 1)).astype(np.int32)  # class 3 absent
    labels[0, :2, :, 0] = IGNORE
    return logits, labels


@pytest.mark.parametrize("per_image,classes", [(False, "present"), (True, "present"),
                                               (False, "all")])
def test_matches_the_lovasz_extension(batch, per_image, classes):
    logits, labels = batch
    loss = LovaszSoftmax(per_image=per_image, classes=classes)
    value = float(loss(logits, labels, LossSpec(C, IGNORE))["lovasz_softmax"].value)
    assert value == pytest.approx(np_lovasz(logits, labels, per_image, classes), rel=1e-5)


def test_at_hard_predictions_it_is_one_minus_the_mean_iou(batch):
    logits, labels = batch
    predicted = logits.argmax(-1)
    hard = 80.0 * np.eye(C, dtype=np.float32)[predicted]
    y, valid = labels[..., 0], labels[..., 0] != IGNORE
    ious = []
    for c in range(C - 1):  # the present classes
        inter = ((predicted == c) & (y == c) & valid).sum()
        union = (((predicted == c) | (y == c)) & valid).sum()
        ious.append(inter / union)
    value = float(LovaszSoftmax()(hard, labels, LossSpec(C, IGNORE))["lovasz_softmax"].value)
    assert value == pytest.approx(1 - np.mean(ious), abs=1e-5)


def test_refuses_unknown_class_choice():
    with pytest.raises(ValueError, match="classes"):
        LovaszSoftmax(classes="none")
