"""The network reproduces the original DeepLab's logits and labels on the reference fixtures.

Fixture folder and criterion: ../shared/fixtures/reference/README.md. Every checkpoint
variable is used and every model variable filled (restore_model is strict by default).
"""

from __future__ import annotations

import numpy as np
import pytest

from deeplab.checkpoints.io import restore_model
from deeplab.model.deeplab import build_model
from deeplab.model.layers import resize_bilinear_align_corners
from deeplab.model.options import ModelOptions

VARIANTS = {
    # folder: (options, logits tolerance in units of std(reference logits))
    "xception65": (ModelOptions(model_variant="xception_65", atrous_rates=(6, 12, 18),
                                decoder_output_stride=4), 2e-3),
    "resnet_v1_101_beta": (ModelOptions(model_variant="resnet_v1_101_beta",
                                        atrous_rates=(6, 12, 18), decoder_output_stride=4), 2e-2),
    "mobilenet_v2": (ModelOptions(model_variant="mobilenet_v2"), 2e-3),
}
PARAMETERS = {"xception65": 41_258_213, "resnet_v1_101_beta": 45_935_365,
              "mobilenet_v2": 2_146_645}


def _input(folder, size):
    if size == 129:
        return np.load(folder / "input_129.npy")
    return np.random.RandomState(1).uniform(0, 255, (1, 513, 513, 3)).astype(np.float32)


def _check_labels(logits, ref_logits, ref_labels, size):
    """Labels equal where the reference top-2 gap exceeds 1e-2 std; >= 99.5 % overall."""
    up = resize_bilinear_align_corners(logits, (size, size)).numpy()
    ref_up = resize_bilinear_align_corners(ref_logits, (size, size)).numpy()
    labels = up.argmax(-1)
    top2 = np.sort(ref_up, axis=-1)[..., -2:]
    confident = (top2[..., 1] - top2[..., 0]) > 1e-2 * ref_logits.std()
    assert np.array_equal(labels[confident], ref_labels[confident])
    assert (labels == ref_labels).mean() >= 0.995


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_reproduces_reference(variant, reference_fixtures, reference_checkpoint):
    options, tolerance = VARIANTS[variant]
    folder = reference_fixtures / variant
    model = build_model(options)
    assert model.count_params() == PARAMETERS[variant]
    report = restore_model(model, reference_checkpoint(variant), allow_unused=False)
    assert not report.missing and not report.unused
    for size in (129, 513):
        ref_logits = np.load(folder / f"logits_{size}.npy")
        logits = model(_input(folder, size), training=False).numpy()
        assert logits.shape == ref_logits.shape
        assert np.abs(logits - ref_logits).max() <= tolerance * ref_logits.std()
        _check_labels(logits, ref_logits, np.load(folder / f"predictions_{size}.npy"), size)
