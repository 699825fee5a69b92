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
from deeplab.data.input_options import AUGMENT, RECORDS, RESIZE, InputOptions
from deeplab.flags import model_options_from_flags, option_flag_values, pair_flag
from deeplab.train.flags import check_cluster_flags, define_train_flags, train_options_from_flags
from deeplab.utils.signals import exit_status
from deeplab.zoo import flags as zoo_flags

FLAGS = flags.FLAGS
define_train_flags(FLAGS)


def data_options(model_options):
    """DataOptions for --dataset / --dataset_dir (the built-in dataset when unset)."""
    from deeplab.model.backbones import mean_pixel
    from deeplab.train.trainer import DataOptions

    dataset_dir = entry.resolve_dataset_dir(FLAGS.dataset, FLAGS.dataset_dir)
    descriptor = entry.dataset_descriptor(FLAGS.dataset, dataset_dir, FLAGS["dataset"].present > 0)
    input_options = InputOptions(
        crop_size=pair_flag(FLAGS, "train_crop_size"),
        **option_flag_values(InputOptions, FLAGS, groups=(AUGMENT, RESIZE, RECORDS)),
        ignore_label=descriptor.ignore_label,
        mean_pixel=mean_pixel(model_options["model_variant"]))
    return DataOptions(descriptor.name, dataset_dir, FLAGS.train_split, descriptor.num_classes,
                       descriptor.ignore_label, input_options), descriptor


def main(argv):
    if not FLAGS.train_logdir:
        raise flags.ValidationError("--train_logdir is required")
    check_cluster_flags(FLAGS)
    options = train_options_from_flags(FLAGS)
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
    if model_options.quantize_delay_step >= 0 and options.num_clones > 1:
        raise flags.ValidationError("--quantize_delay_step: quantization-aware training runs "
                                    "on one clone (--num_clones=1), as the original's")
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
    if FLAGS.skip_damaged_records:
        print(f"skipped {result.skipped_records} damaged record(s) of {data.train_split} "
              "(each named in a warning above)")


def run() -> None:
    """Console script deeplab-train; also `python train.py` from a checkout."""
    entry.run(main, __doc__)


if __name__ == "__main__":
    run()
