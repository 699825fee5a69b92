"""Evaluation plots: per-class IoU bars and the confusion-matrix heat map, as PNG.

Figures are built with `matplotlib.figure.Figure` and the Agg canvas directly: no pyplot, no
global backend switch, safe in threads and on machines without a display.
`figure_to_image` returns uint8 [1, H, W, 3] for `tf.summary.image`.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MAX_LABELED_CLASSES = 40  # beyond this, class names are left off the axes
_DPI = 100


def normalize_rows(matrix) -> np.ndarray:
    """Row-normalises a confusion matrix: each ground-truth row sums to 1.

    Args:
      matrix: counts [C, C] (rows = ground truth).

    Returns:
      float64 [C, C]; rows with no pixels stay all zero.
    """
    matrix = np.asarray(matrix, np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"confusion matrix must be square [C, C], got {matrix.shape}")
    totals = matrix.sum(axis=1, keepdims=True)
    out = np.zeros_like(matrix)
    np.divide(matrix, totals, out=out, where=totals > 0)
    return out


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure


def figure_to_png_bytes(figure: Figure) -> bytes:
    """The figure encoded as PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def figure_to_image(figure: Figure) -> np.ndarray:
    """The rendered figure as uint8 [1, H, W, 3] RGB, ready for `tf.summary.image`."""
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[None, :, :, :3])


def _save(figure: Figure, path: str) -> str:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as f:
        f.write(figure_to_png_bytes(figure))
    return path


def _set_class_ticks(axis, names: Sequence[str], indices: Sequence[int], rotation: int) -> None:
    """Class names as ticks up to MAX_LABELED_CLASSES; beyond, about 20 class indices."""
    positions = np.arange(len(names))
    if len(names) <= MAX_LABELED_CLASSES:
        axis.set_ticks(positions, list(names), rotation=rotation, fontsize=8)
        return
    step = math.ceil(len(names) / 20)
    axis.set_ticks(positions[::step], [str(i) for i in indices[::step]], fontsize=8)


def per_class_iou_figure(result, title: str = "Per-class IoU") -> Figure:
    """Bar chart of `result.per_class_iou` (an EvalResult) in percent, mIoU as a line.

    The ignore class is left out; absent classes (NaN) get no bar.
    """
    indices = [i for i in range(result.num_classes) if i != result.ignore_label]
    names = [result.class_names[i] for i in indices]
    values = np.nan_to_num(100.0 * result.per_class_iou[indices], nan=0.0)
    figure = _new_figure(min(20.0, max(6.0, 0.18 * len(indices) + 2.0)), 4.5)
    axes = figure.add_subplot()
    axes.bar(np.arange(len(indices)), values, color="tab:blue")
    if not math.isnan(result.miou):
        axes.axhline(100.0 * result.miou, color="tab:red", linestyle="--",
                     label=f"mIoU {100.0 * result.miou:.2f}%")
        axes.legend(loc="upper right", fontsize=8)
    _set_class_ticks(axes.xaxis, names, indices, rotation=90)
    if len(names) > MAX_LABELED_CLASSES:
        axes.set_xlabel("class index")
    axes.set_xlim(-0.6, len(indices) - 0.4)
    axes.set_ylim(0, 100)
    axes.set_ylabel("IoU (%)")
    axes.set_title(title)
    figure.tight_layout()
    return figure


def plot_per_class_iou(result, path: str, title: str = "Per-class IoU") -> str:
    """Writes `per_class_iou_figure(result)` as a PNG at `path`; returns `path`."""
    return _save(per_class_iou_figure(result, title), path)


def confusion_matrix_figure(matrix, class_names: Sequence[str] | None = None,
                            normalize: bool = True, ignore_label: int | None = None,
                            title: str = "Confusion matrix") -> Figure:
    """Heat map of a confusion matrix [C, C] (rows = ground truth, columns = prediction).

    Args:
      matrix: counts [C, C].
      class_names: C names (default: indices). Over MAX_LABELED_CLASSES classes the axes show
        about 20 indices instead of names.
      normalize: show each ground-truth row as fractions (`normalize_rows`), else raw counts.
      ignore_label: a class index inside [0, C) whose row and column are dropped.
      title: figure title.
    """
    matrix = np.asarray(matrix)
    num_classes = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    keep = [i for i in range(num_classes) if i != ignore_label]
    shown = matrix[np.ix_(keep, keep)]
    values = normalize_rows(shown) if normalize else shown.astype(np.float64)
    size = min(16.0, max(5.0, 0.22 * len(keep) + 2.5))
    figure = _new_figure(size + 1.0, size)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="viridis", interpolation="nearest",
                        vmin=0.0, vmax=1.0 if normalize else None)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    kept_names = [names[i] for i in keep]
    _set_class_ticks(axes.xaxis, kept_names, keep, rotation=90)
    _set_class_ticks(axes.yaxis, kept_names, keep, rotation=0)
    axes.set_xlabel("prediction")
    axes.set_ylabel("ground truth")
    axes.set_title(title + (" (rows normalised)" if normalize else ""))
    figure.tight_layout()
    return figure


def plot_confusion_matrix(matrix, class_names: Sequence[str] | None, path: str,
                          normalize: bool = True, ignore_label: int | None = None) -> str:
    """Writes `confusion_matrix_figure(...)` as a PNG at `path`; returns `path`."""
    figure = confusion_matrix_figure(matrix, class_names, normalize, ignore_label)
    return _save(figure, path)
