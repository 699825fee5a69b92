"""Training loss: pixel-wise softmax cross entropy with ignore label, class weights and
online hard example mining, normalised over the global batch for tf.distribute."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from deeplab.model.layers import resize_bilinear_align_corners
from deeplab.utils.registry import Registry


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


def pixel_weights(labels, num_classes: int, ignore_label: int, label_weights=None):
    """Per-pixel weights [N]: 0 at ignore (and out-of-range) labels, else the class weight."""
    valid = tf.logical_and(tf.not_equal(labels, ignore_label),
                           tf.logical_and(labels >= 0, labels < num_classes))
    if label_weights is None:
        return tf.cast(valid, tf.float32)
    weights = tf.gather(tf.constant(label_weights, tf.float32),
                        tf.clip_by_value(labels, 0, num_classes - 1))
    return tf.where(valid, weights, 0.0)


def top_k_ratio(step, top_k_percent_pixels: float, hard_example_mining_step: int):
    """Fraction of pixels kept (float32): ramps linearly from 1 to top_k over the mining
    steps, ratio * top_k + (1 - ratio) with ratio = min(1, step / steps), as the original."""
    if top_k_percent_pixels >= 1.0:
        return tf.constant(1.0)
    if hard_example_mining_step <= 0:
        return tf.constant(top_k_percent_pixels)
    ratio = tf.minimum(1.0, tf.cast(step, tf.float32) / float(hard_example_mining_step))
    return ratio * top_k_percent_pixels + (1.0 - ratio)


def pixel_losses(logits, labels, num_classes: int, ignore_label: int,
                 upsample_logits: bool = True, label_weights=None):
    """Weighted cross entropy per pixel and the count of non-ignored pixels.

    logits [B, h, w, C]; labels int [B, H, W, 1]. Returns (losses float32 [N], count
    float32 scalar): ignored pixels have loss 0 and are not counted; a class of weight 0
    has loss 0 but its pixels count (the original divides by the non-ignored pixels).
    """
    logits, labels = match_sizes(logits, labels, upsample_logits)
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    logits = tf.reshape(logits, [-1, num_classes])
    weights = pixel_weights(labels, num_classes, ignore_label, label_weights)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.clip_by_value(labels, 0, num_classes - 1), logits=logits)
    return ce * weights, tf.reduce_sum(tf.cast(tf.not_equal(labels, ignore_label), tf.float32))


def replica_loss(losses, global_count, top_k=None, num_replicas: int = 1):
    """This replica's share of the batch loss, so that the replicas' shares sum to it.

    Without top_k: sum(losses) / global_count, global_count being the counted pixels of the
    whole (global) batch: the global mean cross entropy, split exactly across replicas.
    With top_k (a fraction in (0, 1]): the sum of this replica's int(top_k * N) largest
    losses divided by how many of them are non-zero (the original's online hard example
    mining: ignored pixels, loss 0, that the ramp still keeps are not counted), divided by
    num_replicas (the original averages its clones).
    """
    if top_k is None:
        return tf.math.divide_no_nan(tf.reduce_sum(losses), global_count)
    keep = tf.cast(top_k * tf.cast(tf.size(losses), tf.float32), tf.int32)
    hardest, _ = tf.math.top_k(losses, k=keep)
    present = tf.reduce_sum(tf.cast(tf.not_equal(hardest, 0.0), tf.float32))
    return tf.math.divide_no_nan(tf.reduce_sum(hardest), present) / float(num_replicas)


def weight_decayed_variables(model) -> list:
    """The variables the original regularises, in layer order: Conv2D kernels, and both
    kernels of a SeparableConv2D (the NAS cells' slim.separable_conv2d); not the split
    depthwise convolutions' kernels, biases or BatchNorm."""
    found = []
    for layer in model._flatten_layers(include_self=False):
        kind = type(layer).__name__
        if kind == "Conv2D":
            found.append(layer.kernel)
        elif kind == "SeparableConv2D":
            found += [layer.depthwise_kernel, layer.pointwise_kernel]
    return found


def weight_decay_loss(model, weight_decay: float):
    """weight_decay * sum(w^2) / 2 over `weight_decayed_variables` (slim's l2_regularizer)."""
    if weight_decay <= 0:
        return tf.constant(0.0)
    kernels = weight_decayed_variables(model)
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(k, tf.float32)) for k in kernels])


# --- The loss registry --------------------------------------------------------------------
# A loss is `fn(logits [B, h, w, C], labels int [B, H, W, 1], spec: LossSpec)` returning
# {term name: (per-pixel losses float32 [N], counted pixels float32 scalar)}. The trainer
# normalises each term over the global batch (`replica_loss`: all-reduced counts, hard
# example mining) and sums them with weight decay into the total; adding a loss is one
# function plus one `LOSSES.register(name, fn)`.


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """What every loss may need: classes, the ignore label, how logits and labels are
    brought to one size, and per-class weights (None: all 1)."""

    num_classes: int
    ignore_label: int
    upsample_logits: bool = True
    label_weights: tuple[float, ...] | None = None


def softmax_cross_entropy(logits, labels, spec: LossSpec) -> dict:
    """The original's loss: weighted pixel-wise softmax cross entropy, ignore label left out."""
    return {"cross_entropy": pixel_losses(logits, labels, spec.num_classes, spec.ignore_label,
                                          spec.upsample_logits, spec.label_weights)}


LOSSES: Registry = Registry("loss")
LOSSES.register("softmax_cross_entropy", softmax_cross_entropy)


def get_loss(name: str):
    """The registered loss `name`; ValueError naming the registered ones otherwise."""
    return LOSSES.lookup(name)
