"""Saves coloured predictions of a dataset split: image, prediction, overlay, ground truth.

  python vis.py --checkpoint_dir=TRAIN_LOGDIR --vis_logdir=OUT --dataset=cityscapes \
      --dataset_dir=TFRECORDS --vis_split=val_fine --vis_crop_size=1025,2049 \
      --also_save_raw_predictions --max_number_of_iterations=1

Writes OUT/segmentation_results/<filename>_{image,prediction,overlay,label}.png, named by
each record's image/filename, and with --also_save_raw_predictions
OUT/raw_segmentation_results/<filename>.png (class indices; for Cityscapes the official
label ids, the evaluation server's format). Prediction is the same code as eval.py and
predict.py (multi-scale, flip, sliding window). Like the original, it processes each new
checkpoint in checkpoint_dir until max_number_of_iterations (0: until TRAINING_DONE).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from absl import flags

from deeplab import entry
from deeplab.flags import (
    define_checkpoint_source_flags,
    define_damaged_records_flag,
    define_inference_flags,
    define_model_flags,
    define_resize_flags,
    inference_options_from_flags,
    pair_flag,
    resize_flag_values,
)
from deeplab.utils.progress import Progress
from deeplab.vis import colormap
from deeplab.zoo import flags as zoo_flags

if TYPE_CHECKING:  # evaluation imports TensorFlow: imported where used, so --help is quick
    from deeplab.vis.visualizer import Visualizer

FLAGS = flags.FLAGS
flags.DEFINE_string("vis_logdir", None, "Where to write the pictures.")
flags.DEFINE_integer("vis_batch_size", 1, "Images per batch (1 when --vis_crop_size is empty).")
flags.DEFINE_list("vis_crop_size", "513,513",
                  "Pad every image to this height,width (as the original); empty runs every "
                  "image whole.")
flags.DEFINE_string("vis_split", "val", "Split to visualise.")
flags.DEFINE_integer("num_classes", None, "Classes of the model (as predict.py and "
                     "export_model.py); by default the dataset's.")
flags.DEFINE_enum("colormap_type", "pascal", list(colormap.COLORMAP_NAMES),
                  "Colour map; when not given, the dataset's own (its descriptor's), else "
                  "pascal.")
flags.DEFINE_boolean("also_save_raw_predictions", False,
                     "Also save raw label maps (Cityscapes: official label ids).")
flags.DEFINE_integer("max_number_of_iterations", 0,
                     "Passes over new checkpoints; 0 continues until training has finished "
                     "(TRAINING_DONE in checkpoint_dir).")
define_resize_flags(FLAGS)
define_damaged_records_flag(FLAGS)
define_model_flags(FLAGS)
zoo_flags.define_model_zoo_flag(FLAGS)
define_checkpoint_source_flags(FLAGS)
flags.DEFINE_string("model", None, "An exported model (frozen .pb, SavedModel directory, .onnx "
                    ".tflite, or an export folder) to visualise instead of a checkpoint.")
define_inference_flags(FLAGS)


def _check_flags() -> None:
    missing = [n for n in ("vis_logdir",) if not FLAGS[n].value]
    if not (FLAGS.checkpoint_dir or FLAGS.model):
        missing.append("checkpoint_dir (or --model)")
    if missing:
        raise flags.ValidationError(f"--{' and --'.join(missing)} required")
    if FLAGS.vis_batch_size < 1:
        raise flags.ValidationError("--vis_batch_size must be at least 1")
    if not pair_flag(FLAGS, "vis_crop_size") and FLAGS.vis_batch_size != 1:
        raise flags.ValidationError("--vis_batch_size must be 1 when --vis_crop_size is empty")


def _palette(descriptor):
    requested = FLAGS.colormap_type if FLAGS["colormap_type"].present else None
    return colormap.dataset_palette(descriptor, requested)


def _visualizer(descriptor) -> Visualizer:
    from deeplab.vis.visualizer import Visualizer

    raw_ids = descriptor.to_label_ids if descriptor.label_ids else None
    if raw_ids and FLAGS.also_save_raw_predictions:
        logging.info("raw predictions: class indices mapped to %s label ids", descriptor.name)
    return Visualizer(FLAGS.vis_logdir, _palette(descriptor), FLAGS.also_save_raw_predictions,
                      raw_ids, descriptor.ignore_label)


def _skipped_records(descriptor) -> int:
    from deeplab.evaluate import evaluator

    options = evaluator.eval_input_options(descriptor, skip_damaged_records=True)
    return evaluator.skipped_records(FLAGS.dataset_dir, FLAGS.vis_split, options)


def _visualize(model, descriptor, visualizer: Visualizer) -> int:
    """One pass over the split with `model` (a SegmentationModel); returns the number of
    images."""
    from deeplab.evaluate import evaluator

    options = getattr(model, "options", None)  # an exported model's mean pixel: the flag's
    input_options = evaluator.eval_input_options(
        descriptor, pair_flag(FLAGS, "vis_crop_size"),
        options.model_variant if options else FLAGS.model_variant,
        **resize_flag_values(FLAGS),
        skip_damaged_records=FLAGS.skip_damaged_records)
    visualizer.reset()
    count = 0
    with Progress(evaluator.split_size(FLAGS.dataset_dir, FLAGS.vis_split, descriptor,
                                       input_options),
                  f"vis {FLAGS.vis_split}") as bar:
        for item in evaluator.predict_split(model, FLAGS.dataset_dir, FLAGS.vis_split,
                                            input_options, FLAGS.vis_batch_size,
                                            descriptor.num_classes, bar):
            visualizer.save(item)
            count += 1
    return count


def main(argv):
    from deeplab.evaluate import continuous

    zoo_flags.resolve_checkpoint_flag(FLAGS, "checkpoint_dir")
    _check_flags()
    descriptor = entry.checkpoint_split(FLAGS, FLAGS.vis_split)
    inference = inference_options_from_flags(FLAGS)
    visualizer = _visualizer(descriptor)
    if FLAGS.model:
        _visualize_and_report(entry.exported_model(FLAGS, FLAGS.model, inference), descriptor,
                              visualizer)
        return
    predictors = entry.checkpoint_predictors(FLAGS, descriptor, inference)
    for prefix in continuous.checkpoints_to_evaluate(
            FLAGS.checkpoint_dir, FLAGS.max_number_of_iterations, FLAGS.eval_interval_secs,
            FLAGS.eval_timeout_secs):
        logging.info("visualising with %s", prefix)
        _visualize_and_report(predictors.load(prefix), descriptor, visualizer)


def _visualize_and_report(model, descriptor, visualizer: Visualizer) -> None:
    count = _visualize(model, descriptor, visualizer)
    skipped = ""
    if FLAGS.skip_damaged_records:
        skipped = (f"; skipped {_skipped_records(descriptor)} damaged record(s) (each "
                   "named in a warning above)")
    print(f"{model.source}: wrote pictures of {count} image(s) to {visualizer.save_dir}"
          + (f" and raw predictions to {visualizer.raw_dir}" if visualizer.raw_dir else "")
          + skipped, flush=True)


def run() -> None:
    """Console script deeplab-vis; also `python vis.py` from a checkout."""
    entry.run(main, __doc__)


if __name__ == "__main__":
    run()
