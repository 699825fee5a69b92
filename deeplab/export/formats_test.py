"""Every registered export format round-trips (write, load, verify) on a tiny model."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from deeplab.export import exporter, formats
from deeplab.export.contract import ExportModule, ExportOptions
from deeplab.export.errors import ExportError
from deeplab.export.loading import detect_format, load_exported_model
from deeplab.export.testing import TINY_OPTIONS, tiny_model
from deeplab.export.verify import sample_images

CROP = (33, 41)


def _module():
    return ExportModule(tiny_model(), TINY_OPTIONS, ExportOptions(CROP))


@pytest.mark.parametrize("name", list(formats.REGISTRY))
def test_every_registered_format_round_trips(tmp_path, name):
    fmt = formats.REGISTRY[name]
    for package in fmt.requires:
        pytest.importorskip(package)
    calibration = sample_images(CROP, seed=7) if fmt.needs_calibration else None
    out = str(tmp_path / "out")
    figures = exporter.export(_module(), out, [name], calibration=calibration,
                              log=lambda line: None)
    artefact = os.path.join(out, fmt.file_name)
    assert set(figures) == {fmt.file_name} and figures[fmt.file_name]["ok"]
    assert figures[fmt.file_name]["label_agreement"] >= fmt.tolerance.min_label_agreement
    assert detect_format(artefact) == (formats.by_suffix(fmt.suffix).name if fmt.suffix
                                       else name, artefact)
    image = np.random.default_rng(1).integers(0, 256, (1, 20, 50, 3), dtype=np.uint8)
    probabilities = load_exported_model(artefact)(image)
    assert probabilities.shape == (1, 20, 50, TINY_OPTIONS.num_classes)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=0.02)


def test_unknown_format_is_an_error_never_a_fall_through():
    with pytest.raises(ExportError, match="unknown --format tflite_fp8: choose from frozen"):
        formats.get("tflite_fp8")
    with pytest.raises(ExportError, match="unknown --format tflite_fp8"):
        exporter.parse_formats(["frozen,tflite_fp8"])


def test_all_means_the_default_formats_in_registry_order():
    assert exporter.parse_formats(["all"]) == ("frozen", "saved_model", "onnx", "tflite")
    assert exporter.parse_formats(["tflite_int8,frozen"]) == ("frozen", "tflite_int8")
    assert exporter.parse_formats("onnx") == ("onnx",)  # a string is one value, not letters
    assert exporter.parse_formats("onnx,frozen") == ("frozen", "onnx")


def test_a_format_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="registered twice"):
        formats.register(formats.REGISTRY["frozen"])


def test_quantising_activations_without_calibration_images_is_refused(tmp_path):
    with pytest.raises(ExportError, match="tflite_int8 quantises activations and needs"):
        exporter.export(_module(), str(tmp_path / "out"), ["tflite_int8"])
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(importlib.util.find_spec("tf2onnx") is not None, reason="tf2onnx present")
def test_missing_package_is_named(tmp_path):
    with pytest.raises(ExportError, match="--format=onnx needs tf2onnx"):
        exporter.export(_module(), str(tmp_path / "out"), ["onnx"])
