"""train.py's flags (the original's names, types and defaults) and their TrainOptions.

    fv = flags.FlagValues(); define_train_flags(fv); fv(argv)
    options = train_options_from_flags(fv)

train.py defines them on absl's global FLAGS; `python -m deeplab.train.conformance` on a
FlagValues of its own, so both parse a command line the same way. Defaults come from
TrainOptions (one source).
"""

from __future__ import annotations

from absl import flags

from deeplab.flags import (
    define_damaged_records_flag,
    define_like,
    define_model_flags,
    define_resize_flags,
)
from deeplab.train.options import (
    LEARNING_POLICIES,
    MERGE_METHODS,
    MOMENTUM_UPDATES,
    OPTIMIZERS,
    PRECISIONS,
    RECOMPUTE_MODES,
    TrainOptions,
    loss_names,
)

_T = TrainOptions(train_logdir="")

# The original's TF1 cluster flags: {flag: (its default, what replaces it here)}.
CLUSTER_FLAGS = {
    "master": ("", "tf.distribute: set TF_CONFIG on each machine"),
    "task": (0, "tf.distribute: the task index is TF_CONFIG's"),
    "num_replicas": (1, "tf.distribute: start one process per machine with TF_CONFIG"),
    "num_ps_tasks": (0, "tf.distribute (MultiWorkerMirroredStrategy): parameter servers "
                        "are not used"),
    "startup_delay_steps": (15, "nothing: workers start together under tf.distribute"),
    "clone_on_cpu": (False, "--num_clones (on a CPU-only machine it splits the CPU)"),
}


def _define_optimisation_flags(fv):
    flags.DEFINE_integer("training_number_of_steps", _T.training_number_of_steps, "Steps.",
                         flag_values=fv)
    flags.DEFINE_integer("train_batch_size", _T.train_batch_size, "Global batch size.",
                         flag_values=fv)
    flags.DEFINE_enum("optimizer", _T.optimizer, OPTIMIZERS, "Optimizer.", flag_values=fv)
    flags.DEFINE_float("momentum", _T.momentum, "Momentum.", flag_values=fv)
    flags.DEFINE_enum("momentum_update", _T.momentum_update, MOMENTUM_UPDATES,
                      "tf1 (the original's: a = m*a + g, w -= lr*a) or keras (SGD's: "
                      "v = m*v - lr*g, w += v); they differ when the rate changes.",
                      flag_values=fv)
    flags.DEFINE_float("adam_learning_rate", _T.adam_learning_rate,
                       "Adam's constant learning rate (no policy, no slow start).",
                       flag_values=fv)
    flags.DEFINE_float("adam_epsilon", _T.adam_epsilon, "Adam epsilon.", flag_values=fv)
    flags.DEFINE_enum("learning_policy", _T.learning_policy, LEARNING_POLICIES,
                      "Learning-rate policy (cosine: from base to end_learning_rate).",
                      flag_values=fv)
    flags.DEFINE_float("base_learning_rate", _T.base_learning_rate, "Initial learning rate.",
                       flag_values=fv)
    flags.DEFINE_float("decay_steps", _T.decay_steps, "Poly/cosine decay steps; 0 = the steps "
                       "after slow start.", flag_values=fv)
    flags.DEFINE_float("end_learning_rate", _T.end_learning_rate, "Final learning rate.",
                       flag_values=fv)
    flags.DEFINE_float("learning_rate_decay_factor", _T.learning_rate_decay_factor,
                       "Step policy factor.", flag_values=fv)
    flags.DEFINE_integer("learning_rate_decay_step", _T.learning_rate_decay_step,
                         "Step policy interval.", flag_values=fv)
    flags.DEFINE_float("learning_power", _T.learning_power, "Poly power.", flag_values=fv)
    flags.DEFINE_integer("slow_start_step", _T.slow_start_step,
                         "Steps at the slow-start rate; the policy starts after them.",
                         flag_values=fv)
    flags.DEFINE_float("slow_start_learning_rate", _T.slow_start_learning_rate,
                       "Slow-start rate.", flag_values=fv)
    flags.DEFINE_float("weight_decay", _T.weight_decay, "L2 weight decay of conv kernels.",
                       flag_values=fv)
    flags.DEFINE_float("last_layer_gradient_multiplier", _T.last_layer_gradient_multiplier,
                       "Gradient multiplier of the last layers.", flag_values=fv)
    flags.DEFINE_float("bias_gradient_multiplier", _T.bias_gradient_multiplier,
                       "Gradient multiplier of every bias (the original doubles them; 1 "
                       "turns that off).", flag_values=fv)
    flags.DEFINE_boolean("last_layers_contain_logits_only", _T.last_layers_contain_logits_only,
                         "Last layers are only the logits.", flag_values=fv)


def _define_loss_flags(fv):
    flags.DEFINE_boolean("upsample_logits", _T.upsample_logits,
                         "Upsample logits to the labels (else downsample labels).",
                         flag_values=fv)
    flags.DEFINE_boolean("fine_tune_batch_norm", _T.fine_tune_batch_norm,
                         "Train BatchNorm statistics (false: normalise with the moving ones; "
                         "gamma and beta still train).", flag_values=fv)
    flags.DEFINE_integer("hard_example_mining_step", _T.hard_example_mining_step,
                         "Steps to ramp in hard example mining.", flag_values=fv)
    flags.DEFINE_float("top_k_percent_pixels", _T.top_k_percent_pixels,
                       "Fraction of hardest pixels in the loss.", flag_values=fv)
    flags.DEFINE_multi_string("label_weights", None,
                              "Per-class loss weights, repeated (one per class), or auto "
                              "(alias median_frequency): from the split's pixel counts in "
                              "dataset.json.", flag_values=fv)
    flags.DEFINE_enum("loss", _T.loss, list(loss_names()),
                      "Training loss (deeplab.train.losses.LOSSES).", flag_values=fv)
    flags.DEFINE_multi_float("image_pyramid", None,
                             "Training scales, repeated (e.g. 0.5 and 1.0): one loss per "
                             "scale plus one on the merged logits.", flag_values=fv)
    flags.DEFINE_enum("merge_method", _T.merge_method, MERGE_METHODS,
                      "How the image pyramid's logits merge.", flag_values=fv)


def _define_run_flags(fv):
    flags.DEFINE_string("train_logdir", None, "Where checkpoints, summaries and options go.",
                        flag_values=fv)
    flags.DEFINE_string("tf_initial_checkpoint", None,
                        "Checkpoint to start from (any format, or a model-zoo name).",
                        flag_values=fv)
    flags.DEFINE_boolean("initialize_last_layer", _T.initialize_last_layer,
                         "Also restore the last layers from tf_initial_checkpoint.",
                         flag_values=fv)
    flags.DEFINE_integer("log_steps", _T.log_steps, "Steps between log lines.", flag_values=fv)
    flags.DEFINE_integer("save_interval_secs", _T.save_interval_secs,
                         "Seconds between saves.", flag_values=fv)
    flags.DEFINE_integer("save_interval_steps", _T.save_interval_steps,
                         "Steps between saves (0: by time only).", flag_values=fv)
    flags.DEFINE_integer("save_summaries_secs", _T.save_summaries_secs,
                         "Seconds between image summaries.", flag_values=fv)
    flags.DEFINE_boolean("save_summaries_images", _T.save_summaries_images,
                         "Write input, label and prediction images to TensorBoard.",
                         flag_values=fv)
    flags.DEFINE_string("profile_logdir", None, "Write a TensorBoard profile of 3 training "
                        "steps (after 2 warm-up steps) here.", flag_values=fv)
    flags.DEFINE_integer("keep_checkpoint_max", _T.keep_checkpoint_max, "Checkpoints kept.",
                         flag_values=fv)
    flags.DEFINE_enum("precision", _T.precision, PRECISIONS,
                      "fp32, bf16 (mixed_bfloat16) or fp16 (mixed_float16 with loss scaling).",
                      flag_values=fv)
    flags.DEFINE_enum("recompute", _T.recompute, RECOMPUTE_MODES,
                      "Recompute activations in the backward pass instead of keeping them: "
                      "none, blocks (each backbone unit) or all (every scope); same "
                      "gradients, less memory, more time.", flag_values=fv)
    flags.DEFINE_integer("num_clones", _T.num_clones, "Local devices (CPU split when no GPU).",
                         flag_values=fv)
    flags.DEFINE_boolean("sync_batch_norm", _T.sync_batch_norm,
                         "BatchNorm statistics over all replicas.", flag_values=fv)
    flags.DEFINE_boolean("xla", _T.xla, "Compile the per-replica step with XLA (for GPU/TPU; "
                         "on this 2-core CPU it measured 8-25x slower than the default graph).",
                         flag_values=fv)
    flags.DEFINE_integer("seed", None, "Seed for weights, shuffling and augmentation.",
                         flag_values=fv)
    for name, (default, instead) in CLUSTER_FLAGS.items():
        define_like(name, default, f"Original TF1 cluster flag; use {instead}.", fv)


def _define_data_flags(fv):
    flags.DEFINE_string("dataset", "synthetic",
                        "pascal_voc_seg, cityscapes, ade20k, or synthetic (built in: generated "
                        "on first use when --dataset_dir is unset).", flag_values=fv)
    flags.DEFINE_string("dataset_dir", None, "Directory of TFRecord shards.", flag_values=fv)
    flags.DEFINE_string("train_split", "train", "Split to train on.", flag_values=fv)
    flags.DEFINE_list("train_crop_size", "513,513", "Training crop height,width.",
                      flag_values=fv)
    flags.DEFINE_float("min_scale_factor", 0.5, "Smallest random scale.", flag_values=fv)
    flags.DEFINE_float("max_scale_factor", 2.0, "Largest random scale.", flag_values=fv)
    flags.DEFINE_float("scale_factor_step_size", 0.25, "Random scale step.", flag_values=fv)


def define_train_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
    """Every flag of train.py on `fv`: training, data, model and resize flags."""
    _define_run_flags(fv)
    _define_data_flags(fv)
    _define_optimisation_flags(fv)
    _define_loss_flags(fv)
    define_model_flags(fv)
    define_resize_flags(fv)
    define_damaged_records_flag(fv)


def check_cluster_flags(fv: flags.FlagValues) -> None:
    """ValidationError naming the replacement of the first TF1 cluster flag set."""
    for name, (default, instead) in CLUSTER_FLAGS.items():
        if fv[name].value != default:
            raise flags.ValidationError(f"--{name} is a TF1 cluster flag and is not "
                                        f"supported; use {instead}")


def train_options_from_flags(fv: flags.FlagValues) -> TrainOptions:
    """TrainOptions from the flags (label_weights are resolved by the caller, which knows
    the dataset); ValidationError for a bad value."""
    names = [n for n in TrainOptions.__dataclass_fields__ if n in fv and n != "label_weights"]
    try:
        return TrainOptions(**{name: fv[name].value for name in names})
    except ValueError as exc:
        raise flags.ValidationError(str(exc)) from None
