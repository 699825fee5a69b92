"""Every format exported from a small model, loaded and run; atomic output and clear errors."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from deeplab.export import exporter, tflite
from deeplab.export.contract import ExportModule, ExportOptions
from deeplab.export.errors import ExportError
from deeplab.export.loading import load_exported_model
from deeplab.export.testing import SMALL_OPTIONS, TINY_OPTIONS, small_model, tiny_model

CROP = (65, 81)
ARTEFACTS = ("frozen_inference_graph.pb", "saved_model", "model.onnx", "model.tflite",
             "model_dynamic_range.tflite")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(export directory with every format, the ExportModule it came from)."""
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    module = ExportModule(small_model(), SMALL_OPTIONS, ExportOptions(CROP))
    path = str(tmp_path_factory.mktemp("export") / "out")
    exporter.export(module, path, ["all"], tflite_quantize=True, log=lambda line: None)
    return path, module


@pytest.fixture(scope="module")
def loaded(exported):
    """Artefact name -> its ExportedModel, each loaded once."""
    models = {}

    def load(name):
        if name not in models:
            models[name] = load_exported_model(os.path.join(exported[0], name))
        return models[name]

    return load


def _keras(module, image):
    outputs = module.outputs(tf.constant(image))
    return outputs["probabilities"].numpy(), outputs["labels"].numpy()


def _image(h, w, seed=3):
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    image = np.stack([y * 255 / h, x * 255 / w, (x + y) % 64 * 4], -1) + rng.normal(0, 20,
                                                                                   (h, w, 3))
    return np.clip(image, 0, 255).astype(np.uint8)[None]


@pytest.mark.slow
@pytest.mark.parametrize("artefact", ARTEFACTS)
def test_every_format_loads_and_agrees_with_keras(exported, loaded, artefact):
    path, module = exported
    for image in (_image(50, 70), _image(90, 60)):  # inside the crop; larger than it
        probabilities, labels = _keras(module, image)
        got = loaded(artefact)(image)
        assert got.shape == probabilities.shape and got.dtype == np.float32
        assert np.isfinite(got).all()
        assert (got.argmax(-1) == labels).mean() >= 0.999
        if "dynamic_range" not in artefact:
            np.testing.assert_allclose(got, probabilities, atol=1e-3)
    info = json.load(open(os.path.join(path, exporter.INFO_FILE)))
    assert info["verification"][artefact]["ok"]


def test_frozen_graph_runs_as_the_original_demo(exported):
    path, module = exported
    graph_def = tf.compat.v1.GraphDef()
    with tf.io.gfile.GFile(os.path.join(path, "frozen_inference_graph.pb"), "rb") as f:
        graph_def.ParseFromString(f.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    image = _image(40, 77)
    with tf.compat.v1.Session(graph=graph) as sess:
        labels = sess.run("SemanticPredictions:0", feed_dict={"ImageTensor:0": image})
        probabilities = sess.run("SemanticProbabilities:0", feed_dict={"ImageTensor:0": image})
    assert graph.get_tensor_by_name("ImageTensor:0").dtype == tf.uint8
    assert labels.dtype == np.int32 and labels.shape == (1, 40, 77)
    assert probabilities.dtype == np.float32 and probabilities.shape == (1, 40, 77, 5)
    assert (labels == _keras(module, image)[1]).mean() >= 0.999


def test_saved_model_serves_uint8_batches_and_encoded_png(exported, loaded):
    module, signatures = exported[1], loaded("saved_model").loaded.signatures
    batch = np.concatenate([_image(48, 64, seed=1), _image(48, 64, seed=2)])
    by_pixels = signatures["serving_default"](images=tf.constant(batch))
    assert by_pixels["probabilities"].shape == (2, 48, 64, 5)
    png = io.BytesIO()
    Image.fromarray(batch[1]).save(png, format="PNG")
    by_bytes = signatures["serving_bytes"](image_bytes=tf.constant([png.getvalue()]))
    np.testing.assert_array_equal(by_bytes["labels"].numpy()[0], by_pixels["labels"].numpy()[1])
    assert (by_bytes["labels"].numpy() == _keras(module, batch[1:])[1]).mean() >= 0.999


def _tiny_module(**export):
    return ExportModule(tiny_model(), TINY_OPTIONS, ExportOptions((33, 41), **export))


def _leftovers(parent):
    return [name for name in os.listdir(parent) if name.startswith(".")]


def test_existing_export_path_is_refused_unless_overwrite(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="already exists; pass --overwrite"):
        exporter.export(_tiny_module(), str(target), ["frozen"], log=lambda line: None)
    assert os.listdir(target) == ["keep.txt"]
    exporter.export(_tiny_module(scales=(0.5, 1.0), flip=True), str(target), ["frozen"],
                    overwrite=True, log=lambda line: None)
    assert sorted(os.listdir(target)) == [exporter.INFO_FILE, "frozen_inference_graph.pb"]
    assert _leftovers(tmp_path) == []


def test_artefact_that_disagrees_fails_loudly_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(exporter, "load_exported_model",
                        lambda path: lambda images: np.full(images.shape[:3] + (3,), np.nan))
    with pytest.raises(ExportError, match="disagrees with the Keras model.*NON-FINITE"):
        exporter.export(_tiny_module(), str(tmp_path / "out"), ["frozen"], log=lambda line: None)
    assert os.listdir(tmp_path) == []


def test_converter_failure_is_one_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("converter exploded\nlots of MLIR\n...")

    monkeypatch.setattr(tflite, "convert", broken)
    with pytest.raises(ExportError, match="--format=tflite: conversion failed .*exploded"):
        exporter.export(_tiny_module(), str(tmp_path / "out"), ["frozen", "tflite"],
                        log=lambda line: None)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("formats, message", [(["frozen,pdf"], "unknown --format pdf"),
                                              ([""], "unknown --format")])
def test_unknown_format_is_refused(formats, message):
    with pytest.raises(ExportError, match=message):
        exporter.parse_formats(formats)


def test_format_lists_and_all():
    assert exporter.parse_formats(["tflite,frozen", "frozen"]) == ("frozen", "tflite")
    assert exporter.parse_formats(["all"]) == exporter.FORMATS


def test_export_path_naming_a_pb_file_is_refused(tmp_path):
    with pytest.raises(ExportError, match="give a directory"):
        exporter.check_destination(str(tmp_path / "frozen_inference_graph.pb"), False)


def test_export_at_the_original_crop_verifies_on_images_larger_than_it(tmp_path):
    """Verification runs images beyond the crop (the graph shrinks them itself); our frozen
    graph, read before its export_info.json exists, must not be taken for a fixed-crop
    original and resized to fit on the way in (it failed at --crop_size=513 that way)."""
    from deeplab.export.verify import sample_images

    crop = (513, 513)
    assert max(image.shape[1] for image in sample_images(crop)) > crop[0]
    module = ExportModule(tiny_model(), TINY_OPTIONS, ExportOptions(crop))
    figures = exporter.export(module, str(tmp_path / "out"), ["frozen"], log=lambda _: None)
    assert figures["frozen_inference_graph.pb"]["label_agreement"] > 0.999
