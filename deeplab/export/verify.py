"""Numerical check of an exported model against the Keras model it came from.

Some conversion routes return NaN or garbage without an error, so every artefact is run on
test images right after it is written and compared with the Keras model run through the same
export computation (`ExportModule.outputs`). Two images are used: one inside the crop (padding
and slicing) and one larger than it (shrinking to fit and resizing back).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from deeplab.export.contract import ExportModule
from deeplab.export.errors import ExportError


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Limits on max and mean |p_export - p_keras| (over pixels and classes) and on the share
    of equal labels.

    Float32 artefacts differ from Keras only by summation order (oneDNN, XNNPACK, ONNX
    Runtime kernels), yet in a 65-layer network a near-tie pixel can move by ~1e-2, so the
    max limit is loose and the mean and label limits are tight; garbage or NaN fails all.
    """

    max_abs_diff: float = 0.05
    mean_abs_diff: float = 1e-4
    min_label_agreement: float = 0.999
    # Largest mIoU drop (percentage points) against the Keras model on an evaluation split,
    # checked when export is given one; None: not evaluated (float formats).
    max_miou_drop: float | None = None


FLOAT = Tolerance()
# Dynamic-range quantisation (int8 weights, int8 activations in matmuls/convs) moves
# probabilities by a few percent; the limits still catch NaN and garbage.
QUANTIZED = Tolerance(max_abs_diff=1.0, mean_abs_diff=0.05, min_label_agreement=0.95)


@dataclasses.dataclass(frozen=True)
class Report:
    """Figures of one artefact over all test images."""

    path: str
    max_abs_diff: float
    mean_abs_diff: float
    label_agreement: float
    pixels: int
    finite: bool
    tolerance: Tolerance

    @property
    def ok(self) -> bool:
        limits = self.tolerance
        return (self.finite and self.max_abs_diff <= limits.max_abs_diff
                and self.mean_abs_diff <= limits.mean_abs_diff
                and self.label_agreement >= limits.min_label_agreement)

    def line(self) -> str:
        return (f"{self.path}: |probability difference| max {self.max_abs_diff:.2e} "
                f"(limit {self.tolerance.max_abs_diff:g}), mean {self.mean_abs_diff:.2e} "
                f"(limit {self.tolerance.mean_abs_diff:g}), labels agree on "
                f"{100 * self.label_agreement:.3f}% of {self.pixels} pixels (limit "
                f"{100 * self.tolerance.min_label_agreement:g}%)"
                + ("" if self.finite else ", NON-FINITE values"))

    def to_dict(self) -> dict:
        return {"max_abs_diff": self.max_abs_diff, "mean_abs_diff": self.mean_abs_diff,
                "label_agreement": self.label_agreement,
                "pixels": self.pixels, "finite": self.finite, "ok": self.ok}


def sample_images(crop_size, seed: int = 0) -> list[np.ndarray]:
    """uint8 [1, H, W, 3] images: one inside the crop, one 1.25x larger than it.

    Smooth gradients plus blocks plus noise, so the labels have regions and edges.
    """
    crop_h, crop_w = crop_size
    sizes = [(max(1, crop_h * 4 // 5), max(1, crop_w * 2 // 3)),
             (crop_h * 5 // 4 + 1, crop_w * 5 // 4 + 1)]
    rng = np.random.default_rng(seed)
    images = []
    for h, w in sizes:
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([255 * y / max(h - 1, 1), 255 * x / max(w - 1, 1),
                         127 + 100 * np.sin((x + y) / 7.0)], axis=-1)
        blocks = rng.uniform(-80, 80, (4, 4, 3))[(y * 4 // h).astype(int),
                                                  (x * 4 // w).astype(int)]
        noisy = base + blocks + rng.normal(0, 10, (h, w, 3))
        images.append(np.clip(noisy, 0, 255).astype(np.uint8)[None])
    return images


class Reference:
    """The Keras model's probabilities on the test images, computed once per export."""

    def __init__(self, module: ExportModule):
        self.images = sample_images(module.export.crop_size)
        function = tf.function(module.outputs)
        self.probabilities = [function(tf.constant(image))["probabilities"].numpy()
                              for image in self.images]

    def compare(self, run, path: str, tolerance: Tolerance = FLOAT) -> Report:
        """Runs `run` (uint8 [1, H, W, 3] -> float32 [1, H, W, C]) on the test images."""
        diffs, total, agree, pixels, finite = [], 0.0, 0, 0, True
        for image, expected in zip(self.images, self.probabilities, strict=True):
            got = np.asarray(run(image), np.float32)
            if got.shape != expected.shape:
                raise ExportError(f"{path}: output shape {list(got.shape)} on an input of "
                                  f"shape {list(image.shape)}; the Keras model gives "
                                  f"{list(expected.shape)}")
            finite = finite and bool(np.isfinite(got).all())
            error = np.nan_to_num(np.abs(got - expected), nan=np.inf)
            diffs.append(float(error.max()))
            total += float(error.sum())
            agree += int((got.argmax(-1) == expected.argmax(-1)).sum())
            pixels += expected[..., 0].size
        mean = total / (pixels * self.probabilities[0].shape[-1])
        return Report(path, max(diffs), mean, agree / pixels, pixels, finite, tolerance)


def check_miou(path: str, keras_miou: float, miou: float, tolerance: Tolerance) -> dict:
    """{"keras_miou", "miou", "miou_drop"} in percent; ExportError when the drop exceeds
    tolerance.max_miou_drop."""
    drop = 100 * (keras_miou - miou)
    figures = {"keras_miou": 100 * keras_miou, "miou": 100 * miou, "miou_drop": drop}
    if tolerance.max_miou_drop is not None and not drop <= tolerance.max_miou_drop:
        raise ExportError(f"{path}: mIoU {100 * miou:.2f}% against the Keras model's "
                          f"{100 * keras_miou:.2f}% on the evaluation split, a drop of "
                          f"{drop:.2f} points (limit {tolerance.max_miou_drop:g}); nothing "
                          "was exported")
    return figures


def check(report: Report) -> Report:
    """Returns the report when it is within tolerance; raises ExportError otherwise."""
    if not report.ok:
        raise ExportError(f"exported model disagrees with the Keras model: {report.line()}; "
                          "the conversion is broken, nothing was exported")
    return report
