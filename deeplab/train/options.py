"""Typed training options; field names and defaults follow the original train.py flags."""

from __future__ import annotations

import dataclasses
import sys

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
    Loss: `loss` from `deeplab.train.losses.LOSSES` (default: cross entropy weighted by
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

    train_logdir: str
    training_number_of_steps: int = 30000
    train_batch_size: int = 8
    optimizer: str = "momentum"
    momentum: float = 0.9
    adam_learning_rate: float = 0.001
    adam_epsilon: float = 1e-8
    learning_policy: str = "poly"
    base_learning_rate: float = 0.0001
    decay_steps: float = 0.0
    end_learning_rate: float = 0.0
    learning_rate_decay_factor: float = 0.1
    learning_rate_decay_step: int = 2000
    learning_power: float = 0.9
    slow_start_step: int = 0
    slow_start_learning_rate: float = 0.0001
    weight_decay: float = 4e-5
    last_layer_gradient_multiplier: float = 1.0
    bias_gradient_multiplier: float = 2.0
    momentum_update: str = "tf1"
    image_pyramid: tuple[float, ...] | None = None
    merge_method: str = "max"
    profile_logdir: str | None = None
    last_layers_contain_logits_only: bool = False
    upsample_logits: bool = True
    fine_tune_batch_norm: bool = True
    hard_example_mining_step: int = 0
    top_k_percent_pixels: float = 1.0
    label_weights: tuple[float, ...] | None = None
    loss: str = "softmax_cross_entropy"
    sync_batch_norm: bool = False
    tf_initial_checkpoint: str | None = None
    initialize_last_layer: bool = True
    log_steps: int = 10
    save_interval_secs: int = 1200
    save_interval_steps: int = 0
    save_summaries_secs: int = 600
    save_summaries_images: bool = False
    keep_checkpoint_max: int = 5
    precision: str = "fp32"
    num_clones: int = 1
    xla: bool = False
    recompute: str = "none"
    seed: int | None = None

    def __post_init__(self):
        for name in ("label_weights", "image_pyramid"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(w) for w in value) or None)
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
            (self.learning_policy in LEARNING_POLICIES,
             f"learning_policy must be one of {LEARNING_POLICIES}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.recompute in RECOMPUTE_MODES,
             f"recompute must be one of {RECOMPUTE_MODES}"),
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
            (self.loss in _loss_names(), f"loss must be one of {_loss_names()}"),
        ]
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
