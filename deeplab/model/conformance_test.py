"""The network reproduces the original DeepLab's logits and labels on the reference fixtures.

Fixture folder and criterion: ../shared/fixtures/reference/README.md. Every checkpoint
variable is used and every model variable filled (restore_model is strict by default).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from deeplab.checkpoints.io import restore_model
from deeplab.model.deeplab import build_model
from deeplab.model.dense_prediction_cell import CITYSCAPES_CELL, load_config
from deeplab.model.layers import resize_bilinear_align_corners
from deeplab.model.options import ModelOptions

# The model zoo's MobileNetV3 head (g3doc/cityscapes.md flags).
MOBILENET_V3_HEAD = dict(
    num_classes=19, output_stride=32, image_pooling_crop_size=(769, 769),
    image_pooling_stride=(4, 5), aspp_convs_filters=128, aspp_with_concat_projection=False,
    aspp_with_squeeze_and_excitation=True, image_se_uses_qsigmoid=True,
    decoder_use_sum_merge=True, decoder_filters=19, decoder_output_is_logits=True,
    decoder_output_stride=8)


@dataclasses.dataclass(frozen=True)
class Fixture:
    """A reference folder: the options it was made with, its logits tolerance in units of
    std(reference logits), its two input sizes and its parameter count."""

    options: ModelOptions
    tolerance: float
    parameters: int
    sizes: tuple[int, int] = (129, 513)


def _fixtures() -> dict[str, Fixture]:
    fixtures = {
        "xception65": Fixture(ModelOptions(model_variant="xception_65", atrous_rates=(6, 12, 18),
                                           decoder_output_stride=4), 2e-3, 41_258_213),
        "resnet_v1_101_beta": Fixture(ModelOptions(
            model_variant="resnet_v1_101_beta", atrous_rates=(6, 12, 18),
            decoder_output_stride=4), 2e-2, 45_935_365),
        "mobilenet_v2": Fixture(ModelOptions(model_variant="mobilenet_v2"), 2e-3, 2_146_645),
        "xception71_dpc": Fixture(ModelOptions(
            model_variant="xception_71", num_classes=19, atrous_rates=(6, 12, 18),
            decoder_output_stride=4, dense_prediction_cell_config=load_config(CITYSCAPES_CELL)),
            5e-3, 41_818_955),
    }
    for size, params in (("large", 1_525_230), ("small", 477_454)):
        fixtures[f"mobilenet_v3_{size}_seg"] = Fixture(ModelOptions(
            model_variant=f"mobilenet_v3_{size}_seg", **MOBILENET_V3_HEAD), 5e-4, params,
            (769, 1025))
    fixtures["mobilenet_edgetpu"] = Fixture(ModelOptions(
        model_variant="mobilenet_edgetpu", num_classes=19), 2e-3, 3_643_699)
    fixtures["mobilenet_edgetpu_slim"] = Fixture(ModelOptions(
        model_variant="mobilenet_edgetpu", num_classes=19, depth_multiplier=0.75,
        aspp_convs_filters=128), 2e-3, 1_972_443)
    for variant, params in (("resnet_v1_18", 12_356_613), ("resnet_v1_18_beta", 12_338_421)):
        fixtures[variant] = Fixture(ModelOptions(
            model_variant=variant, atrous_rates=(6, 12, 18), decoder_output_stride=4), 2e-3,
            params)
    fixtures["nas_pnasnet"] = Fixture(ModelOptions(
        model_variant="nas_pnasnet", atrous_rates=(6, 12, 18), decoder_output_stride=4), 5e-3,
        2_602_069)
    fixtures["nas_hnasnet"] = Fixture(ModelOptions(
        model_variant="nas_hnasnet", output_stride=8, atrous_rates=(12, 24, 36),
        decoder_output_stride=4), 5e-3, 7_823_205)
    return fixtures


FIXTURES = _fixtures()
SEEDS = {129: 0, 513: 1, 769: 0, 1025: 1}  # README "Inputs": RandomState(seed) per size


def _input(folder, size):
    if (folder / f"input_{size}.npy").is_file():
        return np.load(folder / f"input_{size}.npy")
    rng = np.random.RandomState(SEEDS[size])
    return rng.uniform(0, 255, (1, size, size, 3)).astype(np.float32)


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
        logits = model(_input(folder, size), training=False).numpy()
        assert logits.shape == ref_logits.shape
        assert np.abs(logits - ref_logits).max() <= fixture.tolerance * ref_logits.std()
        _check_labels(logits, ref_logits, np.load(folder / f"predictions_{size}.npy"), size)


def test_every_fixture_folder_is_covered(reference_fixtures):
    """A fixture folder added to ../shared without a network here fails loudly."""
    folders = {p.name for p in reference_fixtures.iterdir() if (p / "vars.txt").is_file()}
    assert folders == set(FIXTURES), f"folders without a network: {folders - set(FIXTURES)}"
