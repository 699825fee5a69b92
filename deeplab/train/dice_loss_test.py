"""Soft Dice loss against an independent numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from deeplab.train.dice_loss import Dice
from deeplab.train.loss_terms import LossSpec, RegionLoss

C, IGNORE = 4, 255


def np_softmax(logits):
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def np_dice(logits, labels, smooth, classes="present", weights=None):
    """Per class over the valid pixels of the batch, by explicit loops over classes."""
    labels = labels[..., 0]
    valid = labels != IGNORE
    p = np_softmax(logits.astype(np.float64))[valid]
    y = labels[valid]
    losses, wsum = 0.0, 0.0
    for c in range(C):
        target = (y == c).astype(np.float64)
        if classes == "present" and target.sum() == 0:
            continue
        dice = (2 * (p[:, c] * target).sum() + smooth) / (p[:, c].sum() + target.sum() + smooth)
        w = 1.0 if weights is None else weights[c]
        losses += w * (1 - dice)
        wsum += w
    return losses / wsum


@pytest.fixture
def batch():
    rng = np.random.RandomState(3)
    logits = rng.normal(size=(2, 7, 6, C)).astype(np.float32) * 2
    labels = rng.randint(0, C - 1, size=(2, 7, 6, 1)).astype(np.int32)  # class 3 absent
    labels[1, :3, :, 0] = IGNORE
    return logits, labels


@pytest.mark.parametrize("smooth,classes,weights", [
    (1.0, "present", None), (0.0, "present", None), (0.5, "all", None),
    (1.0, "present", (1.0, 2.0, 0.5, 3.0))])
def test_matches_numpy(batch, smooth, classes, weights):
    logits, labels = batch
    terms = Dice(smooth=smooth, classes=classes)(logits, labels, LossSpec(C, IGNORE,
                                                                          label_weights=weights))
    assert list(terms) == ["dice"] and isinstance(terms["dice"], RegionLoss)
    want = np_dice(logits, labels, smooth, classes, weights)
    assert float(terms["dice"].value) == pytest.approx(want, rel=1e-5)


def test_ignored_pixels_do_not_matter(batch):
    logits, labels = batch
    other = logits.copy()
    other[1, :3] = 50.0 * np.random.RandomState(9).normal(size=other[1, :3].shape)
    loss = Dice()
    a = float(loss(logits, labels, LossSpec(C, IGNORE))["dice"].value)
    b = float(loss(other, labels, LossSpec(C, IGNORE))["dice"].value)
    assert a == pytest.approx(b, rel=1e-6)


def test_perfect_prediction_is_zero_and_gradient_lowers_it(batch):
    _, labels = batch
    clean = np.where(labels == IGNORE, 0, labels)[..., 0]
    perfect = 60.0 * np.eye(C, dtype=np.float32)[clean]
    assert float(Dice(smooth=0.0)(perfect, labels, LossSpec(C, IGNORE))["dice"].value) < 1e-6
    logits = tf.Variable(np.zeros((2, 7, 6, C), np.float32))
    values = []
    for _ in range(5):
        with tf.GradientTape() as tape:
            value = Dice()(logits, labels, LossSpec(C, IGNORE))["dice"].value
        logits.assign_sub(200.0 * tape.gradient(value, logits))
        values.append(float(value))
    assert values[-1] < values[0] - 0.05


def test_bad_hyperparameters_are_refused():
    with pytest.raises(ValueError, match="smooth"):
        Dice(smooth=-1.0)
    with pytest.raises(ValueError, match="classes"):
        Dice(classes="some")
