"""What an evaluation leaves in eval_logdir: JSON metrics, PNG plots and TensorBoard events.

Per evaluation (`EvalOutputs.write`):
- `metrics.json`: the latest evaluation (metrics, per-class IoU and accuracy by class name,
  confusion matrix, timing, and the caller's `info`: checkpoint, step, dataset, scales...);
  with a known checkpoint step also `metrics-<step>.json` (kept for every step);
- `per_class_iou.png` and `confusion_matrix.png` (rows normalised), the latest evaluation;
- TensorBoard at that step: the original's scalar `miou_<scales>[_flipped]` (e.g.
  `miou_1.0`), `eval/miou`, `eval/pixel_accuracy`, `eval/mean_class_accuracy`,
  `eval/images_per_second`, `eval/damaged_records_skipped`, `eval/class_iou/<id>_<name>`,
  the two plots as images `eval/per_class_iou` and `eval/confusion_matrix`, and the text
  table `eval/table`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence

import tensorflow as tf

from deeplab.evaluate import plots
from deeplab.evaluate.evaluator import SplitEvaluation

METRICS_FILE = "metrics.json"
PER_CLASS_IOU_FILE = "per_class_iou.png"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"


def miou_tag(scales: Sequence[float], flip: bool) -> str:
    """The original eval's summary name: 'miou' + '_<scale>' per scale + '_flipped'."""
    return "miou" + "".join(f"_{float(s)}" for s in scales) + ("_flipped" if flip else "")


def class_tag(index: int, name: str) -> str:
    """TensorBoard tag of one class's IoU, e.g. 'eval/class_iou/07_traffic_light'."""
    return f"eval/class_iou/{index:02d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}"


def _write_json(path: str, data: dict) -> str:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)
    return path


def write_metrics_json(logdir: str, evaluation: SplitEvaluation, step: int | None,
                       info: dict | None = None) -> list[str]:
    """metrics.json (and metrics-<step>.json when step is known); returns the paths."""
    data = {**(info or {}), "step": step, **evaluation.to_dict()}
    names = [METRICS_FILE] + ([f"metrics-{step}.json"] if step is not None else [])
    return [_write_json(os.path.join(logdir, name), data) for name in names]


def write_plots(logdir: str, evaluation: SplitEvaluation, title: str = "") -> list[str]:
    """per_class_iou.png and confusion_matrix.png; returns the paths."""
    result = evaluation.result
    suffix = f" ({title})" if title else ""
    return [
        plots.plot_per_class_iou(result, os.path.join(logdir, PER_CLASS_IOU_FILE),
                                 title="Per-class IoU" + suffix),
        plots.plot_confusion_matrix(evaluation.matrix, result.class_names,
                                    os.path.join(logdir, CONFUSION_MATRIX_FILE),
                                    normalize=True, ignore_label=result.ignore_label),
    ]


def _scalar(tag: str, value: float, step: int) -> None:
    if not math.isnan(value):
        tf.summary.scalar(tag, value, step=step)


def write_tensorboard(writer, evaluation: SplitEvaluation, step: int,
                      original_tag: str = "miou_1.0") -> None:
    """Scalars, plot images and the text table of one evaluation at `step`."""
    result = evaluation.result
    with writer.as_default():
        _scalar(original_tag, result.miou, step)
        _scalar("eval/miou", result.miou, step)
        _scalar("eval/pixel_accuracy", result.pixel_accuracy, step)
        _scalar("eval/mean_class_accuracy", result.mean_class_accuracy, step)
        _scalar("eval/images_per_second", evaluation.images_per_second, step)
        _scalar("eval/damaged_records_skipped", evaluation.skipped_records, step)
        for index, (name, iou) in enumerate(zip(result.class_names, result.per_class_iou,
                                                strict=True)):
            _scalar(class_tag(index, name), float(iou), step)
        tf.summary.image("eval/per_class_iou",
                         plots.figure_to_image(plots.per_class_iou_figure(result)), step=step)
        tf.summary.image("eval/confusion_matrix", plots.figure_to_image(
            plots.confusion_matrix_figure(evaluation.matrix, result.class_names,
                                          ignore_label=result.ignore_label)), step=step)
        tf.summary.text("eval/table", "```\n" + result.table() + "\n```", step=step)
    writer.flush()


class EvalOutputs:
    """Writes every evaluation of one eval run into `logdir` (one TensorBoard event file)."""

    def __init__(self, logdir: str, original_tag: str = "miou_1.0"):
        os.makedirs(logdir, exist_ok=True)
        self.logdir = logdir
        self.original_tag = original_tag
        self._writer = tf.summary.create_file_writer(logdir)
        self._count = 0

    def write(self, evaluation: SplitEvaluation, step: int | None,
              info: dict | None = None) -> list[str]:
        """JSON, plots and TensorBoard for one evaluation; returns the files written.

        step: the checkpoint's training step; None uses the number of evaluations so far
        for TensorBoard and writes only metrics.json.
        """
        self._count += 1
        paths = write_metrics_json(self.logdir, evaluation, step, info)
        paths += write_plots(self.logdir, evaluation, "" if step is None else f"step {step}")
        write_tensorboard(self._writer, evaluation, self._count if step is None else step,
                          self.original_tag)
        return paths

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> EvalOutputs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
