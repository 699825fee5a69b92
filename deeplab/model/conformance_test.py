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
from deeplab.model.reference_fixtures import FIXTURES, reference_input


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
@pytest.mark.parametrize("variant", sorted(FIXTURES))
def test_reproduces_reference(variant, reference_fixtures, reference_checkpoint):
    fixture = FIXTURES[variant]
    folder = reference_fixtures / variant
    model = build_model(fixture.options)
    assert model.count_params() == fixture.parameters
    report = restore_model(model, reference_checkpoint(variant), allow_unused=False)
    assert not report.missing and not report.unused
    for size in fixture.sizes:
        ref_logits = np.load(folder / f"logits_{size}.npy")
        logits = model(reference_input(folder, size), training=False).numpy()
        assert logits.shape == ref_logits.shape
        assert np.abs(logits - ref_logits).max() <= fixture.tolerance * ref_logits.std()
        _check_labels(logits, ref_logits, np.load(folder / f"predictions_{size}.npy"), size)


def test_every_fixture_folder_is_covered(reference_fixtures):
    """A fixture folder added to ../shared without a network here fails loudly."""
    folders = {p.name for p in reference_fixtures.iterdir() if (p / "vars.txt").is_file()}
    assert folders == set(FIXTURES), f"folders without a network: {folders - set(FIXTURES)}"
