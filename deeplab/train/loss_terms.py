"""What a registered loss receives and returns.

A loss is a frozen dataclass (its fields are its hyperparameters) whose instances are called
as `loss(logits [B, h, w, C], labels int [B, H, W, 1], spec: LossSpec)` and return
{term name: PixelLosses | RegionLoss}. The trainer normalises each term over the global
batch (`deeplab.train.losses.replica_term`), multiplies it by the loss's weight from
`--loss` and adds weight decay.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import tensorflow as tf

from deeplab.model.layers import resize_bilinear_align_corners


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """What every loss may need: classes, the ignore label, how logits and labels are
    brought to one size, and per-class weights (None: all 1)."""

    num_classes: int
    ignore_label: int
    upsample_logits: bool = True
    label_weights: tuple[float, ...] | None = None


class PixelLosses(NamedTuple):
    """A per-pixel term: losses float32 [N] (0 where not counted) and the counted pixels
    (float32 scalar). The trainer divides the sum by the count over the global batch, or
    applies hard example mining to the losses."""

    losses: tf.Tensor
    count: tf.Tensor


class RegionLoss(NamedTuple):
    """A term already normalised over this replica's batch (float32 scalar), such as a
    Dice or Jaccard loss over its pixels; the trainer averages it over the replicas."""

    value: tf.Tensor


def match_sizes(logits, labels, upsample_logits: bool):
    """logits [B, h, w, C], labels [B, H, W, 1] -> equal-size pair (logits float32).

    upsample_logits: logits resized to the labels (bilinear, align_corners); otherwise the
    labels are resized to the logits (nearest neighbour), as the original's flag.
    """
    logits = tf.cast(logits, tf.float32)
    if upsample_logits:
        return resize_bilinear_align_corners(logits, tf.shape(labels)[1:3]), labels
    labels = tf.raw_ops.ResizeNearestNeighbor(images=labels, size=tf.shape(logits)[1:3],
                                              align_corners=True, half_pixel_centers=False)
    return logits, labels


def valid_pixels(labels, num_classes: int, ignore_label: int):
    """bool, the shape of `labels`: a class id in [0, num_classes) and not the ignore label."""
    return tf.logical_and(tf.not_equal(labels, ignore_label),
                          tf.logical_and(labels >= 0, labels < num_classes))


def probabilities_and_targets(logits, labels, spec: LossSpec):
    """Softmax probabilities and one-hot targets per image, ignored pixels zeroed in both.

    Returns (probabilities float32 [B, P, C], targets float32 [B, P, C], valid float32
    [B, P]) with P = H * W at the size `match_sizes` gives.
    """
    logits, labels = match_sizes(logits, labels, spec.upsample_logits)
    batch = tf.shape(logits)[0]
    logits = tf.reshape(logits, [batch, -1, spec.num_classes])
    labels = tf.reshape(tf.cast(labels, tf.int32), [batch, -1])
    valid = tf.cast(valid_pixels(labels, spec.num_classes, spec.ignore_label), tf.float32)
    targets = tf.one_hot(tf.clip_by_value(labels, 0, spec.num_classes - 1), spec.num_classes)
    return (tf.nn.softmax(logits) * valid[..., None], targets * valid[..., None], valid)


def class_weights(spec: LossSpec):
    """float32 [C]: the label weights, or ones."""
    if spec.label_weights is None:
        return tf.ones([spec.num_classes])
    return tf.constant(spec.label_weights, tf.float32)


def mean_over_classes(per_class, present, weights, classes: str):
    """Weighted mean of per-class losses [..., C] over the classes present in the labels
    (classes="present") or all of them ("all"); 0 where no class counts. Returns [...]."""
    if classes == "present":
        weights = weights * tf.cast(present, tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(per_class * weights, -1),
                                 tf.reduce_sum(weights * tf.ones_like(per_class), -1))


CLASS_CHOICES = ("present", "all")
