"""Segmentation metrics: a streaming confusion matrix, mIoU and accuracies.

The confusion matrix is int64 `[C, C]` with rows = ground truth and columns = prediction.
Pixels whose label equals `ignore_label` are left out. `ConfusionMatrix.update` (numpy,
host side) fills it, checking values: ValueError naming any label or prediction outside
`[0, num_classes)`.

mIoU rule (`compute_metrics`): the mean of per-class IoU over the classes that appear in the
ground truth or in the prediction (non-zero union TP + FP + FN), the ignore class excluded.
This is the rule of the original's `tf.metrics.mean_iou` (mean over classes with a non-zero
denominator), except that an ignore label inside the class range (ADE20K's 0) never counts:
the original would average in an IoU of 0 for class 0 whenever the model predicts 0.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence

import numpy as np

_MAX_SHOWN = 10  # bad values listed in an error message


def _check_num_classes(num_classes: int) -> int:
    num_classes = int(num_classes)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return num_classes


# --------------------------------------------------------------------------- numpy path


def _to_int_array(values, what: str) -> np.ndarray:
    """numpy or tf tensor (any shape, integer dtype) -> numpy int64 array."""
    if hasattr(values, "numpy"):
        values = values.numpy()
    array = np.asarray(values)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{what} must have an integer dtype, got {array.dtype}")
    return array.astype(np.int64, copy=False)


def _drop_channel(array: np.ndarray) -> np.ndarray:
    """[..., H, W, 1] -> [..., H, W] (label maps often carry a channel axis)."""
    return array[..., 0] if array.ndim >= 3 and array.shape[-1] == 1 else array


def _out_of_range(values: np.ndarray, num_classes: int, what: str, extra: str = ""):
    bad = np.unique(values[(values < 0) | (values >= num_classes)])
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:_MAX_SHOWN])
        more = f" (and {bad.size - _MAX_SHOWN} more)" if bad.size > _MAX_SHOWN else ""
        raise ValueError(f"{what} outside [0, {num_classes}){extra}: {shown}{more}")


def confusion_matrix_np(labels, predictions, num_classes: int,
                        ignore_label: int | None = None) -> np.ndarray:
    """Confusion matrix of one batch on the host.

    Args:
      labels: ground truth, integer array or tf tensor of any shape (a trailing axis of size 1
        is dropped), e.g. uint8 [N, H, W, 1].
      predictions: integer array of the same shape as labels (after the drop), e.g. [N, H, W].
      num_classes: C; valid values are 0..C-1.
      ignore_label: label value left out of the counts (may lie inside [0, C)), or None.

    Returns:
      int64 [C, C], rows = ground truth, columns = prediction.

    Raises:
      TypeError: for non-integer inputs.
      ValueError: for shape mismatch or values outside [0, C) (other than ignored labels),
        naming the bad values.
    """
    num_classes = _check_num_classes(num_classes)
    labels = _drop_channel(_to_int_array(labels, "labels"))
    predictions = _drop_channel(_to_int_array(predictions, "predictions"))
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} "
                         "differ in shape")
    labels, predictions = labels.reshape(-1), predictions.reshape(-1)
    if ignore_label is not None:
        keep = labels != ignore_label
        labels, predictions = labels[keep], predictions[keep]
    extra = f" (ignore_label {ignore_label})" if ignore_label is not None else ""
    _out_of_range(labels, num_classes, "label values", extra)
    _out_of_range(predictions, num_classes, "prediction values")
    counts = np.bincount(labels * num_classes + predictions, minlength=num_classes**2)
    return counts.astype(np.int64).reshape(num_classes, num_classes)


class ConfusionMatrix:
    """A confusion matrix accumulated over batches (int64, never overflows in practice).

    Example:
        cm = ConfusionMatrix(21, ignore_label=255)
        for labels, predictions in batches:
            cm.update(labels, predictions)
        print(cm.result(class_names).table())
    """

    def __init__(self, num_classes: int, ignore_label: int | None = None):
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self._matrix = np.zeros((self.num_classes, self.num_classes), np.int64)

    @property
    def matrix(self) -> np.ndarray:
        """A copy of the counts, int64 [C, C] (rows = ground truth, columns = prediction)."""
        return self._matrix.copy()

    def update(self, labels, predictions) -> None:
        """Adds a batch: integer numpy arrays or tf tensors, see `confusion_matrix_np`."""
        self._matrix += confusion_matrix_np(
            labels, predictions, self.num_classes, self.ignore_label)

    def add(self, matrix) -> None:
        """Adds a precomputed [C, C] count matrix ."""
        matrix = _to_int_array(matrix, "matrix")
        if matrix.shape != self._matrix.shape:
            raise ValueError(f"matrix shape {matrix.shape} != {self._matrix.shape}")
        if (matrix < 0).any():
            raise ValueError("confusion matrix counts must be non-negative")
        self._matrix += matrix

    def reset(self) -> None:
        """Sets every count back to zero."""
        self._matrix[:] = 0

    def result(self, class_names: Sequence[str] | None = None) -> EvalResult:
        """The metrics of the counts so far (see `compute_metrics`)."""
        return compute_metrics(self._matrix, class_names, self.ignore_label)


# --------------------------------------------------------------------------- metrics


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclasses.dataclass(frozen=True, eq=False)
class EvalResult:
    """Metrics of one confusion matrix. Fractions in [0, 1]; NaN where undefined.

    Attributes:
      miou: mean IoU over `counted` classes.
      per_class_iou: float64 [C]; NaN for classes absent from ground truth and prediction and
        for the ignore class.
      pixel_accuracy: correct / counted pixels.
      mean_class_accuracy: mean of per-class recall over classes present in ground truth.
      per_class_accuracy: float64 [C] recall TP / (TP + FN); NaN where the class is absent
        from ground truth.
      class_pixels: int64 [C] ground-truth pixels per class.
      counted: bool [C], the classes averaged into `miou`.
      num_pixels: number of pixels counted (ignored ones excluded).
      class_names: one name per class.
      ignore_label: the ignore label, or None.
    """

    miou: float
    per_class_iou: np.ndarray
    pixel_accuracy: float
    mean_class_accuracy: float
    per_class_accuracy: np.ndarray
    class_pixels: np.ndarray
    counted: np.ndarray
    num_pixels: int
    class_names: tuple[str, ...]
    ignore_label: int | None = None

    @property
    def num_classes(self) -> int:
        return len(self.per_class_iou)

    def to_dict(self) -> dict:
        """JSON-ready dict: NaN becomes None, per-class values keyed by class name."""
        def per_class(values):
            return {name: _nan_to_none(v) for name, v in zip(self.class_names, values, strict=True)}

        return {
            "miou": _nan_to_none(self.miou),
            "pixel_accuracy": _nan_to_none(self.pixel_accuracy),
            "mean_class_accuracy": _nan_to_none(self.mean_class_accuracy),
            "num_pixels": int(self.num_pixels),
            "num_counted_classes": int(self.counted.sum()),
            "ignore_label": self.ignore_label,
            "per_class_iou": per_class(self.per_class_iou),
            "per_class_accuracy": per_class(self.per_class_accuracy),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict()` as a JSON string (strict JSON: no NaN)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def table(self, digits: int = 2) -> str:
        """A text table: one row per class (IoU %, accuracy %, GT pixels), then the means.

        Absent classes show "-"; the ignore class (if inside the class range) is marked.
        """
        width = max([len("class"), *(len(n) for n in self.class_names)])
        head = f"{'id':>4}  {'class':<{width}}  {'IoU %':>7}  {'acc %':>7}  {'pixels':>12}"
        lines = [head, "-" * len(head)]
        for i, name in enumerate(self.class_names):
            if i == self.ignore_label:
                lines.append(f"{i:>4}  {name:<{width}}  {'(ignored)':>17}")
                continue
            iou = _percent(self.per_class_iou[i], digits)
            acc = _percent(self.per_class_accuracy[i], digits)
            lines.append(f"{i:>4}  {name:<{width}}  {iou:>7}  {acc:>7}  "
                         f"{int(self.class_pixels[i]):>12}")
        lines.append("-" * len(head))
        lines.append(f"mIoU {_percent(self.miou, digits)}% over {int(self.counted.sum())} "
                     f"classes | pixel acc {_percent(self.pixel_accuracy, digits)}% | "
                     f"mean class acc {_percent(self.mean_class_accuracy, digits)}% | "
                     f"{int(self.num_pixels)} pixels")
        return "\n".join(lines)


def _percent(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{100.0 * value:.{digits}f}"


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator as float64, NaN where the denominator is 0."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def compute_metrics(matrix, class_names: Sequence[str] | None = None,
                    ignore_label: int | None = None) -> EvalResult:
    """mIoU, per-class IoU and accuracies of a confusion matrix.

    Args:
      matrix: int [C, C] counts, rows = ground truth, columns = prediction (numpy or tf).
      class_names: C names; defaults to "class_<i>".
      ignore_label: if inside [0, C), that class's row is dropped and the class is left out
        of every mean (its IoU and accuracy are NaN); predictions of it still count as errors.

    Returns:
      EvalResult. mIoU averages the classes with a non-zero union (present in ground truth or
      prediction), the ignore class excluded; NaN if there is none.
    """
    matrix = _to_int_array(matrix, "matrix")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise ValueError(f"confusion matrix must be square [C, C], got {matrix.shape}")
    num_classes = matrix.shape[0]
    names = _class_names(class_names, num_classes)
    ignored = np.zeros(num_classes, bool)
    if ignore_label is not None and 0 <= ignore_label < num_classes:
        ignored[ignore_label] = True
        matrix = matrix.copy()
        matrix[ignore_label, :] = 0
    true_pos = np.diag(matrix)
    class_pixels = matrix.sum(axis=1)
    union = class_pixels + matrix.sum(axis=0) - true_pos
    counted = (union > 0) & ~ignored
    iou = np.where(counted, _safe_divide(true_pos, union), np.nan)
    accuracy = np.where(~ignored, _safe_divide(true_pos, class_pixels), np.nan)
    num_pixels = int(class_pixels.sum())
    return EvalResult(
        miou=_nanmean(iou[counted]),
        per_class_iou=iou,
        pixel_accuracy=float(true_pos.sum() / num_pixels) if num_pixels else float("nan"),
        mean_class_accuracy=_nanmean(accuracy),
        per_class_accuracy=accuracy,
        class_pixels=class_pixels,
        counted=counted,
        num_pixels=num_pixels,
        class_names=names,
        ignore_label=None if ignore_label is None else int(ignore_label),
    )


def _class_names(class_names: Sequence[str] | None, num_classes: int) -> tuple[str, ...]:
    if class_names is None:
        return tuple(f"class_{i}" for i in range(num_classes))
    names = tuple(str(n) for n in class_names)
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    return names
