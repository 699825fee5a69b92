"""Evaluates checkpoints on a dataset split: mIoU, per-class IoU, pixel accuracy.

  python eval.py --checkpoint_dir=TRAIN_LOGDIR --eval_logdir=OUT --dataset=pascal_voc_seg \
      --dataset_dir=TFRECORDS [--eval_scales=0.5 --eval_scales=0.75 ... --add_flipped_images]

The original's flags; the model flags default to the options the training run saved beside
its checkpoints (options.json), and a model-zoo checkpoint (original format) evaluates as is.
With --max_number_of_evaluations=1 the newest checkpoint is evaluated once; otherwise eval
waits for new checkpoints, evaluates each once, and stops after max_number_of_evaluations
(0: no limit), when the trainer has written TRAINING_DONE into checkpoint_dir, or after
--eval_timeout_secs without a new one. --model=PATH evaluates an exported model instead.

Writes to eval_logdir: metrics.json (and metrics-<step>.json), per_class_iou.png,
confusion_matrix.png and TensorBoard events; prints the table to stdout.
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
from deeplab.zoo import flags as zoo_flags

if TYPE_CHECKING:
    pass

# evaluation and the model import TensorFlow: imported where used, so --help is quick
FLAGS = flags.FLAGS
# The original eval.py's flags (atrous_rates, output_stride, quantize_delay_step come with
# the model flags).
flags.DEFINE_string("eval_logdir", None, "Where to write metrics, plots and event logs.")
flags.DEFINE_integer("eval_batch_size", 1, "Images per batch (1 when --eval_crop_size is empty).")
flags.DEFINE_list("eval_crop_size", "513,513",
                  "Pad every image to this height,width (as the original); empty runs every "
                  "image whole, giving exactly predict.py's labels.")
flags.DEFINE_string("eval_split", "val", "Split to evaluate.")
flags.DEFINE_integer("num_classes", None, "Classes of the model (as predict.py and "
                     "export_model.py); by default the dataset's.")
flags.DEFINE_integer("max_number_of_evaluations", 0,
                     "Stop after this many evaluations; 0 evaluates new checkpoints until "
                     "training has finished (TRAINING_DONE in checkpoint_dir).")
define_resize_flags(FLAGS)
define_damaged_records_flag(FLAGS)
# Beside the original's.
flags.DEFINE_string("model", None,
                    "An exported model (deeplab.export) to evaluate instead of a checkpoint.")
define_model_flags(FLAGS)
zoo_flags.define_model_zoo_flag(FLAGS)
define_checkpoint_source_flags(FLAGS)
define_inference_flags(FLAGS)


def _check_flags() -> None:
    missing = [n for n in ("eval_logdir",) if not FLAGS[n].value]
    if not (FLAGS.checkpoint_dir or FLAGS.model):
        missing.append("checkpoint_dir (or --model)")
    if missing:
        raise flags.ValidationError(f"--{' and --'.join(missing)} required")
    if FLAGS.eval_batch_size < 1:
        raise flags.ValidationError("--eval_batch_size must be at least 1")
    if FLAGS.master:
        logging.warning("--master=%s is ignored (no TF1 sessions)", FLAGS.master)


def _input_options(descriptor, model_variant):
    from deeplab.evaluate import evaluator

    crop = pair_flag(FLAGS, "eval_crop_size")
    if crop is None and FLAGS.eval_batch_size != 1:
        raise flags.ValidationError("--eval_batch_size must be 1 when --eval_crop_size is empty "
                                    "(whole images differ in size)")
    return evaluator.eval_input_options(
        descriptor, crop, model_variant, **resize_flag_values(FLAGS),
        skip_damaged_records=FLAGS.skip_damaged_records)


def _info(descriptor, inference, **extra) -> dict:
    return {"dataset": descriptor.name, "dataset_dir": FLAGS.dataset_dir,
            "split": FLAGS.eval_split, "eval_crop_size": pair_flag(FLAGS, "eval_crop_size"),
            "eval_scales": list(inference.scales), "add_flipped_images": inference.flip,
            "eval_window_size": inference.window, "eval_window_stride": inference.window_stride,
            **extra}


def _evaluate(predictor, descriptor, input_options, outputs, step, info) -> None:
    from deeplab.evaluate import evaluator

    evaluation = evaluator.run_evaluation(predictor, FLAGS.dataset_dir, FLAGS.eval_split,
                                          descriptor, input_options, FLAGS.eval_batch_size)
    print(evaluation.summary(), flush=True)
    paths = outputs.write(evaluation, step, info)
    print(f"wrote {', '.join(paths)} and TensorBoard events to {FLAGS.eval_logdir}", flush=True)


def main(argv):
    from deeplab.evaluate import continuous
    from deeplab.evaluate.summaries import EvalOutputs, miou_tag

    zoo_flags.resolve_checkpoint_flag(FLAGS, "checkpoint_dir")
    _check_flags()
    descriptor = entry.checkpoint_split(FLAGS, FLAGS.eval_split)
    if FLAGS.num_classes not in (None, descriptor.num_classes):
        raise flags.ValidationError(
            f"--num_classes={FLAGS.num_classes}, but {FLAGS.dataset_dir} has "
            f"{descriptor.num_classes} classes; evaluation needs the dataset's class count")
    inference = inference_options_from_flags(FLAGS)
    input_options = _input_options(descriptor, FLAGS.model_variant)
    with EvalOutputs(FLAGS.eval_logdir, miou_tag(inference.scales, inference.flip)) as outputs:
        if FLAGS.model:
            info = _info(descriptor, inference, model=FLAGS.model)
            _evaluate(entry.exported_model(FLAGS, FLAGS.model, inference), descriptor,
                      input_options,
                      outputs, None, info)
            return
        predictors = entry.checkpoint_predictors(FLAGS, descriptor, inference)
        for prefix in continuous.checkpoints_to_evaluate(
                FLAGS.checkpoint_dir, FLAGS.max_number_of_evaluations, FLAGS.eval_interval_secs,
                FLAGS.eval_timeout_secs):
            step = continuous.checkpoint_step(prefix)
            logging.info("evaluating %s (step %s)", prefix, step)
            predictor = predictors.load(prefix)
            input_options = _input_options(descriptor, predictor.options.model_variant)
            info = _info(descriptor, inference, checkpoint=prefix)
            _evaluate(predictor, descriptor, input_options, outputs, step, info)


def run() -> None:
    """Console script deeplab-eval; also `python eval.py` from a checkout."""
    entry.run(main, __doc__)


if __name__ == "__main__":
    run()
