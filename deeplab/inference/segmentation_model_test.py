"""Every model source keeps the SegmentationModel contract: labels, probabilities where it has
them, class names and colour map, output stride and crop, any input size, colorize/overlay.

Sources: our checkpoint (a training run with its dataset.json), each format export_model.py
writes (frozen graph, SavedModel, ONNX, TFLite) and the folder holding them, the original's
label-only frozen graph of fixed crop, and a foreign TFLite model (float input in [-1, 1],
fixed size, logits out) as Google's deeplabv3_257_mv_gpu.tflite.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import deeplab
from deeplab.checkpoints.io import model_checkpoint
from deeplab.data.descriptors import DatasetDescriptor, write_descriptor
from deeplab.export.runtimes_test import _foreign_tflite, write_fixed_crop_graph
from deeplab.export.testing import assert_labels_agree, small_model
from deeplab.inference.opening import open_model
from deeplab.inference.segmentation_model import SegmentationModel
from deeplab.model.options import ModelOptions
from deeplab.utils.run_options import save_run_options

CROP = (33, 41)
OPTIONS = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.5, num_classes=3)
NAMES = ("sky", "road", "tree")
COLOURS = ((10, 20, 30), (200, 0, 0), (0, 150, 0))
OURS = ("checkpoint", "frozen", "saved_model", "onnx", "tflite", "export folder")
FOREIGN = ("original label-only graph", "foreign tflite")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """source name -> path: a tiny run (3 named classes) and its exports."""
    root = tmp_path_factory.mktemp("sources")
    data, run = str(root / "data"), str(root / "run")
    os.makedirs(data)
    write_descriptor(data, DatasetDescriptor("streets", 3, 255, {"val": 1}, NAMES, COLOURS))
    keras_model = small_model(OPTIONS)
    prefix = model_checkpoint(keras_model).write(os.path.join(run, "model.ckpt-1"))
    save_run_options(run, model=OPTIONS, data={"dataset": None, "dataset_dir": data})
    exported = str(root / "exported")
    formats = ["frozen", "saved_model", "tflite"]
    if importlib.util.find_spec("tf2onnx") and importlib.util.find_spec("onnxruntime"):
        formats.append("onnx")
    deeplab.load(prefix).export(exported, formats=formats, crop_size=CROP, log=lambda _: None)
    paths = {"checkpoint": prefix, "export folder": exported,
             "frozen": os.path.join(exported, "frozen_inference_graph.pb"),
             "saved_model": os.path.join(exported, "saved_model"),
             "onnx": os.path.join(exported, "model.onnx"),
             "tflite": os.path.join(exported, "model.tflite"),
             "original label-only graph": write_fixed_crop_graph(root / "orig.pb", (33, 33))}
    import tensorflow as tf

    paths["foreign tflite"] = _foreign_tflite(root / "foreign.tflite", tf.float32, False)
    return paths


def _image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", OURS + FOREIGN)
def test_every_source_keeps_the_contract(sources, name):
    if not (os.path.exists(sources[name]) or os.path.exists(sources[name] + ".index")):
        pytest.skip(f"{name}: its converter is not installed here")
    model = open_model(sources[name])
    assert isinstance(model, SegmentationModel)
    small, large = _image(20, 30), _image(50, 70, seed=1)  # within and beyond the crop
    for image in (small, large):
        labels = model.labels(image[None])[0]
        assert labels.shape == image.shape[:2] and labels.dtype == np.int32
        if model.has_probabilities:
            probabilities = model(image[None])[0]
            assert probabilities.shape[:2] == image.shape[:2]
            np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=0.02)
            assert_labels_agree(labels, probabilities.argmax(-1))
        bands = list(model.bands(image[None]))
        assert np.concatenate([b[2] for b in bands]).shape == image.shape[:2]
    segmenter = deeplab.load(sources[name])
    coloured = segmenter.colorize(segmenter.predict(large))
    assert coloured.shape == large.shape and coloured.dtype == np.uint8
    assert segmenter.overlay(large, segmenter.predict(large)).shape == large.shape
    if name in OURS:
        assert model.class_names == NAMES and model.num_classes == 3
        np.testing.assert_array_equal(model.colormap[:3], COLOURS)
        assert model.output_stride == OPTIONS.output_stride
        assert model.crop_size == (None if name == "checkpoint" else CROP)
        np.testing.assert_array_equal(coloured[0, 0], COLOURS[segmenter.predict(large)[0, 0]])
    else:  # nothing names a foreign model's classes: the pascal colours, no names
        assert model.class_names == () and model.output_stride is None
        assert model.crop_size == (33, 33)
        assert model.has_probabilities == (name == "foreign tflite")


def test_exports_predict_what_the_checkpoint_predicts_at_the_export_crop(sources):
    image = _image(30, 40, seed=2)
    want = open_model(sources["checkpoint"], crop_size=CROP).labels(image[None])
    for name in OURS[1:]:
        if os.path.exists(sources[name]):
            assert_labels_agree(open_model(sources[name]).labels(image[None]), want)


def test_exported_models_refuse_scales_and_say_what_they_are(sources):
    from deeplab.model.predict import InferenceOptions

    model = open_model(sources["frozen"])
    with pytest.raises(ValueError, match="scales and flip baked in at export"):
        model.configured(InferenceOptions(scales=(0.5, 1.0)))
    assert model.configured(InferenceOptions()) is model
    assert model.describe() == (f"{sources['frozen']} (frozen, output stride 16, crop 33x41, "
                                "3 classes)")
    original = open_model(sources["original label-only graph"])
    assert original.describe().endswith("(frozen, crop 33x33, 3 classes, labels only)")
    checkpoint = open_model(sources["checkpoint"])
    flipped = checkpoint.configured(InferenceOptions(flip=True))
    assert flipped is not checkpoint and flipped.class_names == NAMES
    assert checkpoint.configured(InferenceOptions(flip=True)) is flipped
