"""Trains DeepLab with the original's flags on one device, N local devices or several workers.

  python train.py --train_logdir=OUT                       # built-in synthetic dataset
  python train.py --train_logdir=OUT --dataset=pascal_voc_seg --dataset_dir=SHARDS \
      --train_split=train_aug --model_variant=xception_65 --atrous_rates=6 \
      --atrous_rates=12 --atrous_rates=18 --output_stride=16 --decoder_output_stride=4 \
      --train_crop_size=513,513 --train_batch_size=8 --tf_initial_checkpoint=CKPT

Several machines: set TF_CONFIG on each (tf.distribute.MultiWorkerMirroredStrategy).
"""

from __future__ import annotations

import dataclasses
import logging
import sys

from absl import flags

from deeplab import entry
from deeplab.flags import (
    define_model_flags,
    define_resize_flags,
    model_options_from_flags,
    pair_flag,
    resize_flag_values,
)
from deeplab.train.options import (
    LEARNING_POLICIES,
    OPTIMIZERS,
    PRECISIONS,
    TrainOptions,
    loss_names,
)
from deeplab.utils.signals import exit_status
from deeplab.zoo import flags as zoo_flags

LOSSES = loss_names()  # deeplab.train.losses.LOSSES's names, without importing TensorFlow

FLAGS = flags.FLAGS
_T = TrainOptions(train_logdir="")

flags.DEFINE_string("train_logdir", None, "Where checkpoints, summaries and options go.")
flags.DEFINE_string("dataset", "synthetic",
                    "pascal_voc_seg, cityscapes, ade20k, or synthetic (built in: generated on "
                    "first use when --dataset_dir is unset).")
flags.DEFINE_string("dataset_dir", None, "Directory of TFRecord shards.")
flags.DEFINE_string("train_split", "train", "Split to train on.")
flags.DEFINE_list("train_crop_size", "513,513", "Training crop height,width.")
flags.DEFINE_integer("train_batch_size", _T.train_batch_size, "Global batch size.")
flags.DEFINE_integer("training_number_of_steps", _T.training_number_of_steps, "Steps.")
flags.DEFINE_enum("optimizer", _T.optimizer, OPTIMIZERS, "Optimizer.")
flags.DEFINE_float("momentum", _T.momentum, "Momentum.")
flags.DEFINE_float("adam_learning_rate", _T.adam_learning_rate, "Adam learning rate.")
flags.DEFINE_float("adam_epsilon", _T.adam_epsilon, "Adam epsilon.")
flags.DEFINE_enum("learning_policy", _T.learning_policy, LEARNING_POLICIES,
                  "Learning-rate policy (cosine as the MindSpore DeepLab).")
flags.DEFINE_float("base_learning_rate", _T.base_learning_rate, "Initial learning rate.")
flags.DEFINE_float("decay_steps", _T.decay_steps, "Poly/cosine decay steps; 0 = all steps.")
flags.DEFINE_float("end_learning_rate", _T.end_learning_rate, "Final learning rate.")
flags.DEFINE_float("learning_rate_decay_factor", _T.learning_rate_decay_factor,
                   "Step policy factor.")
flags.DEFINE_integer("learning_rate_decay_step", _T.learning_rate_decay_step,
                     "Step policy interval.")
flags.DEFINE_float("learning_power", _T.learning_power, "Poly power.")
flags.DEFINE_integer("slow_start_step", _T.slow_start_step, "Steps at the slow-start rate.")
flags.DEFINE_float("slow_start_learning_rate", _T.slow_start_learning_rate, "Slow-start rate.")
flags.DEFINE_float("weight_decay", _T.weight_decay, "L2 weight decay of conv kernels.")
flags.DEFINE_float("last_layer_gradient_multiplier", _T.last_layer_gradient_multiplier,
                   "Gradient multiplier of the last layers.")
flags.DEFINE_boolean("last_layers_contain_logits_only", _T.last_layers_contain_logits_only,
                     "Last layers are only the logits.")
flags.DEFINE_boolean("upsample_logits", _T.upsample_logits,
                     "Upsample logits to the labels (else downsample labels).")
flags.DEFINE_boolean("fine_tune_batch_norm", _T.fine_tune_batch_norm, "Train BatchNorm.")
flags.DEFINE_integer("hard_example_mining_step", _T.hard_example_mining_step,
                     "Steps to ramp in hard example mining.")
flags.DEFINE_float("top_k_percent_pixels", _T.top_k_percent_pixels,
                   "Fraction of hardest pixels in the loss.")
flags.DEFINE_multi_string("label_weights", None,
                          "Per-class loss weights, repeated (one per class), or auto "
                          "(alias median_frequency): from the split's pixel counts in "
                          "dataset.json.")
flags.DEFINE_enum("loss", _T.loss, list(LOSSES), "Training loss (deeplab.train.losses.LOSSES).")
flags.DEFINE_string("tf_initial_checkpoint", None, "Checkpoint to start from (any format).")
flags.DEFINE_boolean("initialize_last_layer", _T.initialize_last_layer,
                     "Also restore the last layers from tf_initial_checkpoint.")
flags.DEFINE_integer("log_steps", _T.log_steps, "Steps between log lines.")
flags.DEFINE_integer("save_interval_secs", _T.save_interval_secs, "Seconds between saves.")
flags.DEFINE_integer("save_interval_steps", _T.save_interval_steps,
                     "Steps between saves (0: by time only).")
flags.DEFINE_integer("save_summaries_secs", _T.save_summaries_secs,
                     "Seconds between image summaries.")
flags.DEFINE_boolean("save_summaries_images", _T.save_summaries_images,
                     "Write input, label and prediction images to TensorBoard.")
flags.DEFINE_integer("keep_checkpoint_max", _T.keep_checkpoint_max, "Checkpoints kept.")
flags.DEFINE_enum("precision", _T.precision, PRECISIONS,
                  "fp32, bf16 (mixed_bfloat16) or fp16 (mixed_float16 with loss scaling).")
flags.DEFINE_integer("num_clones", _T.num_clones, "Local devices (CPU split when no GPU).")
flags.DEFINE_boolean("sync_batch_norm", False, "BatchNorm statistics over all replicas.")
flags.DEFINE_boolean("xla", _T.xla, "Compile the per-replica step with XLA (for GPU/TPU; on "
                     "this 2-core CPU it measured 8-25x slower than the default graph).")
flags.DEFINE_integer("seed", None, "Seed for weights, shuffling and augmentation.")
flags.DEFINE_float("min_scale_factor", 0.5, "Smallest random scale.")
flags.DEFINE_float("max_scale_factor", 2.0, "Largest random scale.")
flags.DEFINE_float("scale_factor_step_size", 0.25, "Random scale step.")
flags.DEFINE_integer("num_replicas", 1, "Original flag; use TF_CONFIG instead.")
flags.DEFINE_integer("num_ps_tasks", 0, "Original flag; parameter servers are not supported.")
define_model_flags(FLAGS)
define_resize_flags(FLAGS)


def train_options() -> TrainOptions:
    f = FLAGS
    names = [n for n in TrainOptions.__dataclass_fields__ if n in f and n != "label_weights"]
    return TrainOptions(**{name: f[name].value for name in names})


def data_options(model_options):
    """DataOptions for --dataset / --dataset_dir (the built-in dataset when unset)."""
    from deeplab.data.pipeline import InputOptions
    from deeplab.model.backbones import mean_pixel
    from deeplab.train.trainer import DataOptions

    dataset_dir = entry.resolve_dataset_dir(FLAGS.dataset, FLAGS.dataset_dir)
    descriptor = entry.dataset_descriptor(FLAGS.dataset, dataset_dir, FLAGS["dataset"].present > 0)
    input_options = InputOptions(
        crop_size=pair_flag(FLAGS, "train_crop_size"),
        min_scale_factor=FLAGS.min_scale_factor, max_scale_factor=FLAGS.max_scale_factor,
        scale_factor_step_size=FLAGS.scale_factor_step_size,
        **resize_flag_values(FLAGS), ignore_label=descriptor.ignore_label,
        mean_pixel=mean_pixel(model_options["model_variant"]))
    return DataOptions(descriptor.name, dataset_dir, FLAGS.train_split, descriptor.num_classes,
                       descriptor.ignore_label, input_options), descriptor


def main(argv):
    if len(argv) > 1:
        raise flags.ValidationError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.train_logdir:
        raise flags.ValidationError("--train_logdir is required")
    if FLAGS.num_replicas != 1 or FLAGS.num_ps_tasks != 0:
        raise flags.ValidationError("--num_replicas/--num_ps_tasks are not supported: start "
                                    "one process per machine with TF_CONFIG instead")
    options = train_options()
    from deeplab.train.strategy import make_strategy  # splits the CPU before TF starts

    strategy = make_strategy(options.num_clones)
    if zoo_flags.resolve_checkpoint_flag(FLAGS, "tf_initial_checkpoint", model_flags=True,
                                         set_dataset=False):  # after the CPU split
        options = dataclasses.replace(options, tf_initial_checkpoint=FLAGS.tf_initial_checkpoint)
    from deeplab.flags import model_flag_values
    from deeplab.train.trainer import train

    data, descriptor = data_options(model_flag_values(FLAGS))
    from deeplab.data.class_weights import resolve_label_weights

    options = dataclasses.replace(options, label_weights=resolve_label_weights(
        FLAGS.label_weights, descriptor, data.train_split))
    model_options = model_options_from_flags(FLAGS, descriptor.num_classes)
    entry.check_crop_size("train_crop_size", data.input.crop_size, model_options.output_stride)
    logging.info("training %s on %s/%s with %d replica(s)", model_options.model_variant,
                 data.dataset_dir, data.train_split, strategy.num_replicas_in_sync)
    result = train(model_options, options, data, strategy)
    if result.stopped:  # SIGTERM / Ctrl-C: the step in progress finished and was saved
        print(f"stopped by {result.stopped} at step {result.step}: saved {result.checkpoint}; "
              "run the same command to resume")
        sys.exit(exit_status(result.signum))
    if result.seconds_per_step == 0.0:
        print(f"final step {result.step}: already trained, no step run; "
              f"checkpoint {result.checkpoint}")
        return
    print(f"final step {result.step} loss {result.loss:.4f} "
          f"{result.images_per_second:.2f} images/s {result.seconds_per_step:.3f} s/step "
          f"checkpoint {result.checkpoint}")


def run() -> None:
    """Console script deeplab-train; also `python train.py` from a checkout."""
    entry.run(main, __doc__)


if __name__ == "__main__":
    run()
