"""Soft Dice loss (Milletari et al. 2016), per class over the replica's batch."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from deeplab.train.loss_terms import (
    CLASS_CHOICES,
    LossSpec,
    RegionLoss,
    class_weights,
    mean_over_classes,
    probabilities_and_targets,
)


@dataclasses.dataclass(frozen=True)
class Dice:
    """1 - (2 sum(p y) + smooth) / (sum(p) + sum(y) + smooth) per class c, p the softmax
    probability of c and y its one-hot target, summed over the non-ignored pixels of the
    whole batch; averaged over the classes present in the labels (classes="present") or
    all classes ("all"), weighted by the label weights.

    smooth: added to numerator and denominator (keeps an absent class that is not predicted
    at loss 0 and the gradient finite).
    """

    smooth: float = 1.0
    classes: str = "present"

    def __post_init__(self):
        if self.smooth < 0:
            raise ValueError(f"dice smooth must be >= 0, got {self.smooth}")
        if self.classes not in CLASS_CHOICES:
            raise ValueError(f"dice classes must be one of {CLASS_CHOICES}, got "
                             f"{self.classes!r}")

    def __call__(self, logits, labels, spec: LossSpec) -> dict:
        probabilities, targets, _ = probabilities_and_targets(logits, labels, spec)
        intersection = tf.reduce_sum(probabilities * targets, axis=[0, 1])
        total = tf.reduce_sum(probabilities + targets, axis=[0, 1])
        dice = (2.0 * intersection + self.smooth) / (total + self.smooth)
        present = tf.reduce_sum(targets, axis=[0, 1]) > 0
        loss = mean_over_classes(1.0 - dice, present, class_weights(spec), self.classes)
        return {"dice": RegionLoss(loss)}
