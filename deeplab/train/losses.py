"""Training losses: the registry (`LOSSES`, `--loss=NAME[:WEIGHT],...`), the original's
pixel-wise softmax cross entropy (ignore label, class weights, online hard example mining),
each term normalised over the global batch for tf.distribute, and weight decay.

The contract of a loss is in `deeplab.train.loss_terms`; adding one is a module with a
frozen dataclass (fields = hyperparameters, set by `--loss_options=NAME.FIELD=VALUE`) plus
one `LOSSES.register(name, cls)`."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from deeplab.model.layer_walk import all_layers
from deeplab.train.dice_loss import Dice
from deeplab.train.loss_syntax import parse_loss_options, parse_loss_weights
from deeplab.train.loss_terms import LossSpec, PixelLosses, RegionLoss, match_sizes, valid_pixels
from deeplab.train.lovasz_loss import LovaszSoftmax
from deeplab.utils.registry import Registry


def pixel_weights(labels, num_classes: int, ignore_label: int, label_weights=None):
    """Per-pixel weights [N]: 0 at ignore (and out-of-range) labels, else the class weight."""
    valid = valid_pixels(labels, num_classes, ignore_label)
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
    return PixelLosses(
        ce * weights, tf.reduce_sum(tf.cast(tf.not_equal(labels, ignore_label), tf.float32)))


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
    for layer in all_layers(model):
        # Keras' depthwise and separable convolutions are not Conv2D subclasses
        if isinstance(layer, keras.layers.Conv2D):
            found.append(layer.kernel)
        elif isinstance(layer, keras.layers.SeparableConv2D):
            found += [layer.depthwise_kernel, layer.pointwise_kernel]
    return found


def weight_decay_loss(model, weight_decay: float):
    """weight_decay * sum(w^2) / 2 over `weight_decayed_variables` (slim's l2_regularizer)."""
    if weight_decay <= 0:
        return tf.constant(0.0)
    kernels = weight_decayed_variables(model)
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(k, tf.float32)) for k in kernels])




@dataclasses.dataclass(frozen=True)
class SoftmaxCrossEntropy:
    """The original's loss: weighted pixel-wise softmax cross entropy, ignore label left out."""

    def __call__(self, logits, labels, spec: LossSpec) -> dict:
        return {"cross_entropy": pixel_losses(logits, labels, spec.num_classes,
                                              spec.ignore_label, spec.upsample_logits,
                                              spec.label_weights)}


LOSSES: Registry = Registry("loss")
LOSSES.register("softmax_cross_entropy", SoftmaxCrossEntropy)
LOSSES.register("dice", Dice)
LOSSES.register("lovasz_softmax", LovaszSoftmax)


def get_loss(name: str):
    """The registered loss class `name`; ValueError naming the registered ones otherwise."""
    return LOSSES.lookup(name)


@dataclasses.dataclass(frozen=True)
class WeightedLoss:
    """One entry of --loss: the configured loss and the weight of its terms."""

    name: str
    weight: float
    loss: object


def build_losses(loss: str, loss_options=()) -> tuple[WeightedLoss, ...]:
    """The losses of `--loss` configured by `--loss_options`; ValueError naming what is
    wrong (unknown loss, option for a loss not in --loss, unknown field, bad value)."""
    weights = parse_loss_weights(loss)
    options = parse_loss_options(loss_options)
    stray = set(options) - {name for name, _ in weights}
    if stray:
        raise ValueError(f"--loss_options for {', '.join(sorted(stray))}, which --loss="
                         f"{loss!r} does not use")
    return tuple(WeightedLoss(name, weight, _configure(name, options.get(name, {})))
                 for name, weight in weights)


def _configure(name: str, values: dict[str, str]):
    cls = get_loss(name)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, text in values.items():
        if key not in fields:
            raise ValueError(f"loss {name!r} has no option {key!r}; its options: "
                             f"{', '.join(fields) or 'none'}")
        kwargs[key] = _convert(text, fields[key].default, f"{name}.{key}")
    return cls(**kwargs)


def _convert(text: str, default, where: str):
    """text as the type of the field's default."""
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return type(default)(text)
    except ValueError:
        raise ValueError(f"--loss_options {where}={text!r}: expected a "
                         f"{type(default).__name__}") from None


def replica_term(term, top_k=None, num_replicas: int = 1):
    """This replica's share of a term, so that the replicas' shares sum to the batch's.

    PixelLosses: sum over the global count (`replica_loss`, with hard example mining when
    top_k is set); RegionLoss: its value (a mean over this replica's batch) / num_replicas.
    """
    if isinstance(term, RegionLoss):
        return term.value / float(num_replicas)
    per_pixel, count = term
    global_count = tf.distribute.get_replica_context().all_reduce("sum", count)
    return replica_loss(per_pixel, global_count, top_k, num_replicas)


def weighted_terms(configured, logits, labels, spec: LossSpec, top_k=None,
                   num_replicas: int = 1, suffix: str = "") -> dict:
    """{term name + suffix: weight x this replica's share} over the configured losses;
    ValueError when two losses name a term alike."""
    terms = {}
    for entry in configured:
        for name, term in entry.loss(logits, labels, spec).items():
            if name + suffix in terms:
                raise ValueError(f"two losses report a term named {name!r}")
            value = replica_term(term, top_k, num_replicas)
            terms[name + suffix] = value if entry.weight == 1.0 else entry.weight * value
    return terms
