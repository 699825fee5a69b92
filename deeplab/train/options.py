"""Typed training options; field names and defaults follow the original train.py flags."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import MISSING

from deeplab.train.loss_syntax import parse_loss_options, parse_loss_weights
from deeplab.utils.option_fields import option

OPTIMIZERS = ("momentum", "adam")
# How momentum is kept: "tf1" as the original (TF1 MomentumOptimizer: a = m * a + g,
# w -= lr * a) or "keras" (keras.optimizers.SGD: v = m * v - lr * g, w += v). Equal at a
# constant rate; they differ whenever the rate changes (poly, slow start).
MOMENTUM_UPDATES = ("tf1", "keras")
MERGE_METHODS = ("max", "avg")
LEARNING_POLICIES = ("poly", "step", "cosine")
PRECISIONS = ("fp32", "bf16", "fp16")
# What the backward pass computes again instead of keeping (deeplab.train.recompute).
RECOMPUTE_MODES = ("none", "blocks", "all")


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """How to train. Steps count optimizer updates; rates are per step.

    Every rule is the original train.py's unless an option says otherwise.
    Schedule (`deeplab.train.schedules`): with s = max(step - slow_start_step, 0),
    `learning_policy` poly (base * (1 - s / decay_steps) ** learning_power, down to
    end_learning_rate), step (base * decay_factor ** (s // decay_step)) or cosine (from
    base to end_learning_rate over decay_steps); decay_steps 0 means
    training_number_of_steps - slow_start_step. Before slow_start_step the rate is
    slow_start_learning_rate. Adam runs at the constant adam_learning_rate.
    Momentum: `momentum_update` (MOMENTUM_UPDATES), TF1's by default.
    Gradients: every bias's gradient times bias_gradient_multiplier (the original's 2),
    the last layers' times last_layer_gradient_multiplier (both for last-layer biases).
    Loss: `loss` names losses of `deeplab.train.losses.LOSSES` with weights
    (NAME[:WEIGHT],...; hyperparameters by loss_options NAME.FIELD=VALUE; default: cross
    entropy weighted by
    label_weights, divided by the non-ignored pixels; with top_k_percent_pixels < 1 the
    hardest pixels once hard_example_mining_step has ramped it in, divided by the non-zero
    losses among them), one term per `image_pyramid` scale plus the merged logits
    (`merge_method` max or avg) when several scales are given, plus
    weight_decay * sum(w^2) / 2 over convolution kernels (not depthwise, BN or biases).
    fine_tune_batch_norm=False: BatchNorm normalises with (and keeps) its moving
    statistics; gamma and beta still train.
    sync_batch_norm: BatchNorm statistics all-reduced across replicas (a training choice,
    not part of the network: a run may resume with it on or off).
    recompute: activations recomputed in the backward pass instead of kept
    (`deeplab.train.recompute`): none, blocks (each backbone unit) or all (every scope);
    same gradients, less memory, more time. A run may resume with any of them.
    """

    train_logdir: str = option(MISSING, "string",
                               "Where checkpoints, summaries and options go.",
                               flag_default=None, group="run")
    training_number_of_steps: int = option(30000, "integer", "Steps.", group="optimisation")
    train_batch_size: int = option(8, "integer", "Global batch size.", group="optimisation")
    optimizer: str = option("momentum", "enum", "Optimizer.", choices=OPTIMIZERS,
                            group="optimisation")
    momentum: float = option(0.9, "float", "Momentum.", group="optimisation")
    adam_learning_rate: float = option(
        0.001, "float", "Adam's constant learning rate (no policy, no slow start).",
        group="optimisation")
    adam_epsilon: float = option(1e-8, "float", "Adam epsilon.", group="optimisation")
    learning_policy: str = option(
        "poly", "enum", "Learning-rate policy (cosine: from base to end_learning_rate).",
        choices=LEARNING_POLICIES, group="optimisation")
    base_learning_rate: float = option(0.0001, "float", "Initial learning rate.",
                                       group="optimisation")
    decay_steps: float = option(0.0, "float", "Poly/cosine decay steps; 0 = the steps after "
                                "slow start.", group="optimisation")
    end_learning_rate: float = option(0.0, "float", "Final learning rate.",
                                      group="optimisation")
    learning_rate_decay_factor: float = option(0.1, "float", "Step policy factor.",
                                               group="optimisation")
    learning_rate_decay_step: int = option(2000, "integer", "Step policy interval.",
                                           group="optimisation")
    learning_power: float = option(0.9, "float", "Poly power.", group="optimisation")
    slow_start_step: int = option(
        0, "integer", "Steps at the slow-start rate; the policy starts after them.",
        group="optimisation")
    slow_start_learning_rate: float = option(0.0001, "float", "Slow-start rate.",
                                             group="optimisation")
    weight_decay: float = option(4e-5, "float", "L2 weight decay of conv kernels.",
                                 group="optimisation")
    last_layer_gradient_multiplier: float = option(
        1.0, "float", "Gradient multiplier of the last layers.", group="optimisation")
    bias_gradient_multiplier: float = option(
        2.0, "float", "Gradient multiplier of every bias (the original doubles them; 1 "
        "turns that off).", group="optimisation")
    momentum_update: str = option(
        "tf1", "enum", "tf1 (the original's: a = m*a + g, w -= lr*a) or keras (SGD's: "
        "v = m*v - lr*g, w += v); they differ when the rate changes.",
        choices=MOMENTUM_UPDATES, group="optimisation")
    image_pyramid: tuple[float, ...] | None = option(
        None, "multi_float", "Training scales, repeated (e.g. 0.5 and 1.0): one loss per "
        "scale plus one on the merged logits.", group="loss")
    merge_method: str = option("max", "enum", "How the image pyramid's logits merge.",
                               choices=MERGE_METHODS, group="loss")
    profile_logdir: str | None = option(
        None, "string", "Write a TensorBoard profile of 3 training steps (after 2 warm-up "
        "steps) here.", group="run")
    last_layers_contain_logits_only: bool = option(
        False, "boolean", "Last layers are only the logits.", group="optimisation")
    upsample_logits: bool = option(
        True, "boolean", "Upsample logits to the labels (else downsample labels).",
        group="loss")
    fine_tune_batch_norm: bool = option(
        True, "boolean", "Train BatchNorm statistics (false: normalise with the moving ones; "
        "gamma and beta still train).", group="loss")
    hard_example_mining_step: int = option(0, "integer", "Steps to ramp in hard example "
                                           "mining.", group="loss")
    top_k_percent_pixels: float = option(1.0, "float", "Fraction of hardest pixels in the "
                                         "loss.", group="loss")
    # resolved by train.py, which knows the dataset (auto: from its pixel counts)
    label_weights: tuple[float, ...] | None = option(
        None, "multi_string", "Per-class loss weights, repeated (one per class), or auto "
        "(alias median_frequency): from the split's pixel counts in dataset.json.",
        group="loss")
    loss: str = option("softmax_cross_entropy", "string",
                       "Training losses with weights, NAME[:WEIGHT],... (e.g. "
                       "softmax_cross_entropy:1,dice:0.5); names from "
                       "deeplab.train.losses.LOSSES.", group="loss")
    loss_options: tuple[str, ...] = option(
        (), "list", "Loss hyperparameters, NAME.FIELD=VALUE,... (e.g. dice.smooth=0.1, "
        "lovasz_softmax.per_image=true).", from_flag=lambda values: tuple(values or ()),
        group="loss")
    sync_batch_norm: bool = option(False, "boolean", "BatchNorm statistics over all "
                                   "replicas.", group="run")
    tf_initial_checkpoint: str | None = option(
        None, "string", "Checkpoint to start from (any format, or a model-zoo name).",
        group="run")
    initialize_last_layer: bool = option(
        True, "boolean", "Also restore the last layers from tf_initial_checkpoint.",
        group="run")
    log_steps: int = option(10, "integer", "Steps between log lines.", group="run")
    save_interval_secs: int = option(1200, "integer", "Seconds between saves.", group="run")
    save_interval_steps: int = option(0, "integer", "Steps between saves (0: by time only).",
                                      group="run")
    save_summaries_secs: int = option(600, "integer", "Seconds between image summaries.",
                                      group="run")
    save_summaries_images: bool = option(
        False, "boolean", "Write input, label and prediction images to TensorBoard.",
        group="run")
    keep_checkpoint_max: int = option(5, "integer", "Checkpoints kept.", group="run")
    precision: str = option(
        "fp32", "enum", "fp32, bf16 (mixed_bfloat16) or fp16 (mixed_float16 with loss "
        "scaling).", choices=PRECISIONS, group="run")
    num_clones: int = option(1, "integer", "Local devices (CPU split when no GPU).",
                             group="run")
    xla: bool = option(False, "boolean", "Compile the per-replica step with XLA (for GPU/TPU; "
                       "on this 2-core CPU it measured 8-25x slower than the default graph).",
                       group="run")
    recompute: str = option(
        "none", "enum", "Recompute activations in the backward pass instead of keeping them: "
        "none, blocks (each backbone unit) or all (every scope); same gradients, less memory, "
        "more time.", choices=RECOMPUTE_MODES, group="run")
    seed: int | None = option(None, "integer", "Seed for weights, shuffling and augmentation.",
                              group="run")

    def __post_init__(self):
        object.__setattr__(self, "loss_options", tuple(self.loss_options or ()))
        for name in ("label_weights", "image_pyramid"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(w) for w in value) or None)
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
            (self.learning_policy in LEARNING_POLICIES,
             f"learning_policy must be one of {LEARNING_POLICIES}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.momentum_update in MOMENTUM_UPDATES,
             f"momentum_update must be one of {MOMENTUM_UPDATES}"),
            (self.merge_method in MERGE_METHODS, f"merge_method must be one of {MERGE_METHODS}"),
            (all(s > 0 for s in self.image_pyramid or ()),
             "image_pyramid scales must be positive"),
            (self.training_number_of_steps > 0, "training_number_of_steps must be positive"),
            (self.train_batch_size > 0, "train_batch_size must be positive"),
            (0.0 < self.top_k_percent_pixels <= 1.0, "top_k_percent_pixels must be in (0, 1]"),
            (self.num_clones >= 1, "num_clones must be at least 1"),
            (self.keep_checkpoint_max >= 1, "keep_checkpoint_max must be at least 1"),
            (self.log_steps >= 1, "log_steps must be at least 1"),
            (self.recompute in RECOMPUTE_MODES, f"recompute must be one of {RECOMPUTE_MODES}"),
        ]
        unknown = [name for name, _ in parse_loss_weights(self.loss)
                   if name not in _loss_names()]
        if unknown:
            checks.append((False, f"unknown loss {unknown[0]!r} in --loss={self.loss!r}; "
                                  f"registered: {', '.join(_loss_names())}"))
        parse_loss_options(self.loss_options)
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.train_batch_size % self.num_clones:
            raise ValueError(f"train_batch_size={self.train_batch_size} must be divisible by "
                             f"num_clones={self.num_clones}")

    @property
    def total_decay_steps(self) -> float:
        """Steps poly and cosine decay over: decay_steps, else the steps after slow start."""
        return self.decay_steps or float(
            max(self.training_number_of_steps - self.slow_start_step, 1))


def _loss_names() -> tuple[str, ...]:
    """The names in deeplab.train.losses.LOSSES; from deeplab.utils.names_cache unless the
    registry is loaded (it imports TensorFlow; defining train.py's flags should not)."""
    registry = sys.modules.get("deeplab.train.losses")
    if registry is not None:
        return tuple(registry.LOSSES)
    from deeplab.utils.names_cache import cached

    return cached("losses", _read_loss_names)


def _read_loss_names() -> tuple[str, ...]:
    from deeplab.train.losses import LOSSES

    return tuple(LOSSES)


loss_names = _loss_names
