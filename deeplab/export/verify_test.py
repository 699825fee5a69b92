"""The numerical check catches NaN and garbage and passes float round-off."""

from __future__ import annotations

import numpy as np
import pytest

from deeplab.export import verify
from deeplab.export.errors import ExportError


class _Reference(verify.Reference):
    def __init__(self, probabilities):  # no model: fixed expected probabilities
        self.images = [np.zeros(p.shape[:3] + (3,), np.uint8) for p in probabilities]
        self.probabilities = probabilities


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def _reference(seed=0):
    rng = np.random.default_rng(seed)
    return _Reference([_softmax(rng.normal(0, 3, (1, 20, 30, 4)))])


def test_round_off_passes_and_figures_are_reported():
    reference = _reference()
    report = reference.compare(lambda image: reference.probabilities[0] + 1e-6, "m.onnx")
    assert verify.check(report).ok and report.pixels == 600
    assert report.max_abs_diff == pytest.approx(1e-6, rel=0.1)
    assert report.label_agreement == 1.0 and "m.onnx" in report.line()


@pytest.mark.parametrize("garbage, tolerance", [
    (lambda p: np.full_like(p, np.nan), verify.FLOAT),
    (lambda p: _softmax(np.random.default_rng(9).normal(0, 3, p.shape)), verify.FLOAT),
    (lambda p: _softmax(np.random.default_rng(9).normal(0, 3, p.shape)), verify.QUANTIZED),
    (lambda p: np.zeros_like(p), verify.QUANTIZED)])
def test_nan_and_garbage_fail_loudly(garbage, tolerance):
    reference = _reference()
    report = reference.compare(lambda image: garbage(reference.probabilities[0]), "m.tflite",
                               tolerance)
    with pytest.raises(ExportError, match="m.tflite.*disagrees|disagrees.*m.tflite"):
        verify.check(report)


def test_wrong_output_shape_is_an_error():
    reference = _reference()
    with pytest.raises(ExportError, match="output shape"):
        reference.compare(lambda image: reference.probabilities[0][:, :10], "m.pb")
