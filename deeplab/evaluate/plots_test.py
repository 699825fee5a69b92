"""Tests for the evaluation plots."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deeplab.data.descriptors import palette_owner
from deeplab.evaluate import metrics, plots


def _names(name):
    return palette_owner(name).class_names


def png_size(path_or_bytes):
    data = path_or_bytes
    if isinstance(path_or_bytes, str):
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def random_matrix(num_classes, seed=0):
    rng = np.random.default_rng(seed)
    matrix = rng.integers(0, 50, (num_classes, num_classes)) + np.diag(
        rng.integers(100, 1000, num_classes))
    return matrix.astype(np.int64)


def test_normalize_rows():
    matrix = np.array([[2, 2, 0], [0, 0, 0], [1, 3, 4]])
    out = plots.normalize_rows(matrix)
    np.testing.assert_allclose(out, [[0.5, 0.5, 0], [0, 0, 0], [0.125, 0.375, 0.5]])
    assert out.dtype == np.float64
    big = plots.normalize_rows(random_matrix(151))
    np.testing.assert_allclose(big.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="square"):
        plots.normalize_rows(np.zeros((2, 3)))


def test_per_class_iou_png_voc(tmp_path):
    names = _names("pascal")
    result = metrics.compute_metrics(random_matrix(21), names, ignore_label=255)
    path = plots.plot_per_class_iou(result, str(tmp_path / "sub" / "iou.png"))
    width, height = png_size(path)
    assert 400 <= width <= 2000 and 300 <= height <= 1000


def test_per_class_iou_png_ade20k_with_absent_class(tmp_path):
    matrix = random_matrix(151)
    matrix[7, :] = matrix[:, 7] = 0  # class 7 absent: NaN IoU, no bar
    result = metrics.compute_metrics(matrix, _names("ade20k"), 0)
    width, height = png_size(plots.plot_per_class_iou(result, str(tmp_path / "iou.png")))
    assert 1000 <= width <= 4000 and 300 <= height <= 1000


@pytest.mark.parametrize("num_classes,ignore_label", [(19, None), (151, 0)])
def test_confusion_matrix_png(tmp_path, num_classes, ignore_label):
    names = _names("cityscapes" if num_classes == 19 else "ade20k")
    path = plots.plot_confusion_matrix(random_matrix(num_classes), names,
                                       str(tmp_path / "cm.png"), ignore_label=ignore_label)
    width, height = png_size(path)
    assert 500 <= width <= 1800 and 500 <= height <= 1700
    if num_classes < 40:
        raw = plots.plot_confusion_matrix(random_matrix(num_classes), None,
                                          str(tmp_path / "raw.png"), normalize=False)
        assert png_size(raw) == (width, height)  # the figure size depends on C only


def test_confusion_matrix_names_must_match():
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        plots.confusion_matrix_figure(np.eye(3), ("a", "b"))


def test_figure_to_image_and_png_bytes():
    figure = plots.confusion_matrix_figure(random_matrix(5), list("abcde"))
    image = plots.figure_to_image(figure)
    assert image.dtype == np.uint8 and image.ndim == 4
    assert image.shape[0] == 1 and image.shape[-1] == 3
    assert (image.shape[2], image.shape[1]) == png_size(plots.figure_to_png_bytes(figure))
    assert image.std() > 0  # something was drawn
