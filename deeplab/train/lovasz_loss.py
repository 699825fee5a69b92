"""Lovasz-softmax loss (Berman et al. 2018): a convex surrogate of 1 - IoU per class."""

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


def lovasz_per_class(probabilities, targets):
    """The Lovasz extension of the Jaccard loss for each class of each group.

    probabilities, targets float32 [G, P, C] (ignored pixels zero in both, so their error
    is 0 and they sort after every pixel that matters). Returns ([G, C] losses, [G, C]
    bool: the class occurs in the group's targets).

    For class c the errors e = |y - p| sorted in decreasing order weight the increments of
    the Jaccard loss |S_i| / |F u S_i| of the first i pixels S_i (F: the pixels of class c);
    at one-hot p this is exactly 1 - IoU of c.
    """
    errors = tf.transpose(tf.abs(targets - probabilities), [0, 2, 1])  # [G, C, P]
    foreground = tf.transpose(targets, [0, 2, 1])
    order = tf.argsort(errors, axis=-1, direction="DESCENDING", stable=True)
    errors = tf.gather(errors, order, batch_dims=2)
    foreground = tf.gather(foreground, order, batch_dims=2)
    in_class = tf.reduce_sum(foreground, -1, keepdims=True)
    intersection = in_class - tf.cumsum(foreground, axis=-1)
    union = in_class + tf.cumsum(1.0 - foreground, axis=-1)
    jaccard = 1.0 - intersection / union
    increments = tf.concat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], -1)
    return tf.reduce_sum(errors * increments, -1), in_class[..., 0] > 0


@dataclasses.dataclass(frozen=True)
class LovaszSoftmax:
    """The Lovasz-softmax loss over the non-ignored pixels, averaged over the classes
    present in the labels (classes="present") or all ("all"), weighted by the label weights.

    per_image: one loss per image, averaged over the images that have a counted class;
    else one over the whole batch (the paper's default for segmentation).
    """

    per_image: bool = False
    classes: str = "present"

    def __post_init__(self):
        if self.classes not in CLASS_CHOICES:
            raise ValueError(f"lovasz_softmax classes must be one of {CLASS_CHOICES}, got "
                             f"{self.classes!r}")

    def __call__(self, logits, labels, spec: LossSpec) -> dict:
        probabilities, targets, _ = probabilities_and_targets(logits, labels, spec)
        if not self.per_image:
            probabilities = tf.reshape(probabilities, [1, -1, spec.num_classes])
            targets = tf.reshape(targets, [1, -1, spec.num_classes])
        per_class, present = lovasz_per_class(probabilities, targets)
        per_group = mean_over_classes(per_class, present, class_weights(spec), self.classes)
        counted = tf.reduce_any(present, -1) if self.classes == "present" else tf.ones_like(
            per_group, tf.bool)
        loss = tf.math.divide_no_nan(tf.reduce_sum(per_group),
                                     tf.reduce_sum(tf.cast(counted, tf.float32)))
        return {"lovasz_softmax": RegionLoss(loss)}
