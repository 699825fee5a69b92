"""The reference fixtures' networks and inputs (../shared/fixtures/reference/README.md):
which options each fixture folder was made with, its logits tolerance, parameter count and
input sizes, and the random input of each size. Read by the conformance tests and by
bench/int8_accuracy.py."""

from __future__ import annotations

import dataclasses

import numpy as np

from deeplab.model.dense_prediction_cell import CITYSCAPES_CELL, load_config
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


def reference_input(folder, size):
    """The fixture's input image of `size` (its .npy, else the README's seeded random
    image): float32 [1, size, size, 3], 0..255."""
    if (folder / f"input_{size}.npy").is_file():
        return np.load(folder / f"input_{size}.npy")
    rng = np.random.RandomState(SEEDS[size])
    return rng.uniform(0, 255, (1, size, size, 3)).astype(np.float32)
