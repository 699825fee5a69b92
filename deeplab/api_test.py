"""deeplab.load: a zoo name (tarball in the cache), a checkpoint folder and an exported model
give the frozen graph's labels; keras_model trains and saves; export round-trips."""

from __future__ import annotations

import os
import shutil

import keras
import numpy as np
import pytest

import deeplab
from deeplab.export.testing import assert_labels_agree
from deeplab.zoo import cache, testing
from deeplab.zoo.verify import class_seeking_probes, original_graph


@pytest.fixture(scope="module")
def zoo_name(tmp_path_factory, tarballs):
    """A registry name whose tarball sits in a private cache's downloads (no network); the
    first test to load it extracts and verifies it, the others hit the cache."""
    tmp_path = tmp_path_factory.mktemp("api_zoo")
    entry = testing.zoo_entry("tiny_api", size=os.path.getsize(tarballs["good"]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPLAB_HOME", str(tmp_path / "home"))
        patch.delenv("DEEPLAB_ZOO_URL", raising=False)
        patch.setenv("DEEPLAB_ZOO_REGISTRY",
                     testing.write_registry(str(tmp_path / "zoo.json"), [entry]))
        os.makedirs(os.path.dirname(cache.tarball_path(entry)))
        shutil.copy(tarballs["good"], cache.tarball_path(entry))
        yield entry.name


@pytest.fixture(scope="module")
def image():
    """A probe on which the tarballs' network predicts several classes."""
    model, options = testing.tarball_model()
    return class_seeking_probes(model, options, *testing.CROP, count=1)[0]


def _graph_labels(folder, image):
    graph = original_graph(os.path.join(folder, "frozen_inference_graph.pb"))
    return graph.labels_and_scores(image[None])[0]


@pytest.mark.slow  # fetches, verifies and loads twice (~25 s on an idle 2-core CPU)
def test_load_zoo_name_gives_the_frozen_graph_labels(zoo_name, image, tmp_path):
    model = deeplab.load(zoo_name)
    folder = cache.model_dir(testing.zoo_entry(zoo_name))
    expected = _graph_labels(folder, image)
    labels = model.predict(image)
    assert labels.shape == image.shape[:2] and labels.dtype == np.int32
    assert_labels_agree(labels, expected)
    assert len(np.unique(expected)) > 1  # a meaningful comparison, not one class everywhere
    probabilities = model.predict_proba(image[None], scales=(0.75, 1.0), flip=True)
    assert probabilities.shape == (1, *image.shape[:2], testing.NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    assert model.class_names[0] == "background" and len(model.class_names) == 6
    assert model.colormap.shape[1] == 3 and model.colormap.dtype == np.uint8
    # the cached folder is a checkpoint folder with options.json, as a training run's
    again = deeplab.load(folder)
    assert_labels_agree(again.predict(image), expected)
    assert again.class_names == model.class_names


def test_keras_model_fits_and_saves(zoo_name, tmp_path):
    net = deeplab.load(zoo_name).keras_model
    assert isinstance(net, keras.Model)
    net.compile(optimizer="sgd",
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images = np.random.RandomState(0).uniform(0, 255, (2, 33, 33, 3)).astype(np.float32)
    labels = np.zeros((2, *net(images[:1]).shape[1:3]), np.int32)
    history = net.fit(images, labels, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    net.save(str(tmp_path / "net.keras"))
    assert os.path.getsize(tmp_path / "net.keras") > 100_000


def test_predict_sees_weights_changed_through_keras_model(zoo_name, image):
    from deeplab.model.folded_conv import bake_batch_norm
    from deeplab.model.predict import Predictor

    model = deeplab.load(zoo_name)
    before = model.predict(image)  # folds the weights of now
    last_folded = list(bake_batch_norm(model.keras_model))[-1]  # its BatchNorm is folded
    kernel = model.keras_model.get_layer(last_folded).kernel
    kernel.assign(-kernel)
    after = model.predict(image)
    assert np.mean(after != before) > 0.05
    fresh = Predictor(model.keras_model, model.options).labels(image[None]).numpy()[0]
    np.testing.assert_array_equal(after, fresh)


def test_export_then_load_the_exported_model(zoo_name, image, tmp_path):
    model = deeplab.load(zoo_name)
    model.export(str(tmp_path / "exported"), formats="frozen,saved_model",
                 crop_size=testing.CROP, log=lambda *a: None)  # formats as a plain string
    exported = deeplab.load(str(tmp_path / "exported" / "frozen_inference_graph.pb"))
    saved_model = deeplab.load(str(tmp_path / "exported" / "saved_model"))
    assert saved_model.class_names == model.class_names  # export_info.json one folder up
    assert_labels_agree(saved_model.predict(image), model.predict(image))
    with pytest.raises(ValueError, match="network is fixed; num_classes, output_stride"):
        deeplab.load(str(tmp_path / "exported" / "frozen_inference_graph.pb"),
                     output_stride=8, num_classes=3)
    assert_labels_agree(exported.predict(image), model.predict(image))
    assert exported.keras_model is None and exported.class_names == model.class_names
    with pytest.raises(ValueError, match="baked in"):
        exported.predict(image, flip=True)


def test_load_refuses_unknown_keywords_naming_the_accepted_ones(zoo_home):
    with pytest.raises(TypeError, match=r"unknown keyword\(s\) colour, size; it takes "
                                        r"output_stride, num_classes, options, verify, "
                                        r"dataset, class_names"):
        deeplab.load("no/such/thing", dataset="pascal_voc_seg", colour=True, size=3)


def test_load_refuses_unknown_sources_and_backbones(zoo_home):
    with pytest.raises(FileNotFoundError, match="no such checkpoint, exported model or"):
        deeplab.load("no/such/thing")
    with pytest.raises(ValueError, match="--tf_initial_checkpoint=xception_65_imagenet"):
        deeplab.load("xception_65_imagenet")


@pytest.fixture(scope="module")
def label_only_folder(tmp_path_factory):
    """An export folder holding an original-style label-only frozen graph (labels = argmax
    of the RGB channels) beside a second artefact (an unreadable TFLite file)."""
    from deeplab.export.runtimes_test import write_label_only_graph

    folder = tmp_path_factory.mktemp("label_only")
    write_label_only_graph(folder / "frozen_inference_graph.pb")
    (folder / "model.tflite").write_bytes(b"not a model")
    return folder


def test_label_only_graph_gives_labels_for_every_input_kind(label_only_folder, tmp_path):
    from PIL import Image

    model = deeplab.load(str(label_only_folder), class_names=("red", "green", "blue"))
    assert model.format == "frozen"  # the best of the folder's two artefacts
    rng = np.random.RandomState(0)
    small = rng.randint(0, 256, (5, 7, 3)).astype(np.uint8)
    large = rng.randint(0, 256, (9, 4, 3)).astype(np.uint8)
    np.testing.assert_array_equal(model.predict(small), small.argmax(-1))
    np.testing.assert_array_equal(model.predict(small[None].astype(np.float32)),
                                  small[None].argmax(-1))
    np.testing.assert_array_equal(model.predict(Image.fromarray(small)), small.argmax(-1))
    (tmp_path / "images").mkdir()
    Image.fromarray(small).save(tmp_path / "images" / "a.png")
    Image.fromarray(large).save(tmp_path / "images" / "b.png")
    from_dir = model.predict(str(tmp_path / "images"))  # two sizes: a list, by file name
    assert isinstance(from_dir, list) and len(from_dir) == 2
    np.testing.assert_array_equal(from_dir[1], large.argmax(-1))
    listed = model.predict([tmp_path / "images" / "b.png", small])
    np.testing.assert_array_equal(listed[0], large.argmax(-1))
    np.testing.assert_array_equal(listed[1], small.argmax(-1))
    with pytest.raises(ValueError, match="labels only .*call predict"):
        model.predict_proba(small)
    assert model.class_names == ("red", "green", "blue")


def test_fixed_crop_graph_predicts_larger_images_at_their_size(tmp_path):
    from deeplab.export.runtimes_test import write_fixed_crop_graph

    path = write_fixed_crop_graph(tmp_path / "fixed.pb", (33, 33))
    image = np.zeros((70, 45, 3), np.uint8)
    image[:, :20, 0] = 200  # red left (label 0), green right (label 1)
    image[:, 20:, 1] = 200
    labels = deeplab.load(path, crop_size=(33, 33)).predict(image)
    assert labels.shape == (70, 45)  # at 21x33 in the graph, back at the image size
    assert (labels[:, :17] == 0).all() and (labels[:, 24:] == 1).all()  # off the edge
    with pytest.raises(ValueError, match="70x45 is larger than the graph's fixed crop 33x33"):
        deeplab.load(path, crop_size=(33, 33), resize_to_crop=False).predict(image)


def test_exif_rotated_photo_is_predicted_upright(label_only_folder, tmp_path):
    from PIL import Image

    model = deeplab.load(str(label_only_folder / "frozen_inference_graph.pb"))
    upright = np.zeros((4, 6, 3), np.uint8)
    upright[:, :3, 0] = 200  # red left half, green right half
    upright[:, 3:, 1] = 200
    stored = Image.fromarray(np.rot90(upright).copy())  # stored turned, EXIF turns back
    exif = stored.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    stored.save(tmp_path / "photo.png", exif=exif)  # lossless: exact pixels
    labels = model.predict(str(tmp_path / "photo.png"))
    assert labels.shape == (4, 6)
    np.testing.assert_array_equal(labels, upright.argmax(-1))
    with Image.open(tmp_path / "photo.png") as opened:
        np.testing.assert_array_equal(model.predict(opened), upright.argmax(-1))


def test_colorize_and_overlay_use_the_models_colour_map(label_only_folder):
    model = deeplab.load(str(label_only_folder), dataset="pascal_voc_seg")
    image = np.zeros((2, 3, 3), np.uint8)
    image[0, :, 1] = 100  # top row green (class 1), bottom row class 0
    labels = model.predict(image)
    colours = model.colorize(labels)
    pascal = model.colormap
    assert colours.shape == (2, 3, 3) and colours.dtype == np.uint8
    np.testing.assert_array_equal(colours[0, 0], pascal[1])  # (128, 0, 0): aeroplane
    np.testing.assert_array_equal(colours[1, 0], pascal[0])
    blended = model.overlay(image, labels, alpha=0.5)
    np.testing.assert_array_equal(blended[0, 0], np.rint((image[0, 0] + pascal[1].astype(
        float)) / 2).astype(np.uint8))
    assert model.num_classes == 3  # the test graph's ArgMax runs over 3 channels:
    assert model.class_names == ()  # pascal's 21 names do not name its classes
    assert deeplab.load(str(label_only_folder), class_names=("a", "b", "c")).class_names[1] == "b"


def test_export_at_another_output_stride_says_so(zoo_name, image, tmp_path):
    model = deeplab.load(zoo_name)
    logs = []
    model.export(str(tmp_path / "os8"), formats="frozen", crop_size=testing.CROP,
                 output_stride=8, log=logs.append)
    trained = model.options.output_stride
    assert trained != 8 and f"output stride 8, not the trained {trained}" in logs[-1]
    exported = deeplab.load(str(tmp_path / "os8" / "frozen_inference_graph.pb"))
    assert_labels_agree(exported.predict(image), deeplab.load(zoo_name, output_stride=8)
                        .predict(image))
