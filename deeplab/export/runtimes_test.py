"""Format detection and input handling of the exported-model loader."""

from __future__ import annotations

import numpy as np
import pytest

from deeplab.export.errors import ExportError
from deeplab.export.loading import detect_format, load_exported_model
from deeplab.export.runtimes import as_uint8_images


def test_formats_are_detected_from_the_path(tmp_path):
    for name in ("g.pb", "m.onnx", "m.tflite"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"x")
    assert detect_format(str(tmp_path / "g.pb")) == ("frozen", str(tmp_path / "g.pb"))
    assert detect_format(str(tmp_path / "m.onnx"))[0] == "onnx"
    assert detect_format(str(tmp_path / "m.tflite"))[0] == "tflite"
    assert detect_format(str(tmp_path / "sm")) == ("saved_model", str(tmp_path / "sm"))
    assert detect_format(str(tmp_path / "sm" / "saved_model.pb"))[0] == "saved_model"


def test_directory_with_one_artefact_is_that_artefact_and_several_run_the_best(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    assert detect_format(str(tmp_path)) == ("onnx", str(tmp_path / "model.onnx"))
    (tmp_path / "model.tflite").write_bytes(b"x")
    (tmp_path / "model_int8.tflite").write_bytes(b"x")
    assert detect_format(str(tmp_path)) == ("onnx", str(tmp_path / "model.onnx"))
    (tmp_path / "frozen_inference_graph.pb").write_bytes(b"x")
    assert detect_format(str(tmp_path))[0] == "frozen"


def test_directory_with_several_foreign_artefacts_is_refused(tmp_path):
    (tmp_path / "a.onnx").write_bytes(b"x")
    (tmp_path / "b.tflite").write_bytes(b"x")
    with pytest.raises(ExportError, match="holds 2: .*a.onnx, .*b.tflite"):
        detect_format(str(tmp_path))


@pytest.mark.parametrize("name, message", [("missing.pb", "no such exported model"),
                                           ("weights.h5", "unknown exported-model format")])
def test_bad_paths_are_named_in_the_error(tmp_path, name, message):
    if name.endswith(".h5"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ExportError, match=message):
        load_exported_model(str(tmp_path / name))


@pytest.mark.parametrize("name", ["bad.pb", "bad.tflite"])
def test_unreadable_artefacts_are_named_in_the_error(tmp_path, name):
    (tmp_path / name).write_bytes(b"not a model")
    with pytest.raises(ExportError, match=name):
        load_exported_model(str(tmp_path / name))


def test_float_images_are_rounded_to_uint8():
    images = np.array([[[[0.4, 254.6, 300.0]]]], np.float32)
    np.testing.assert_array_equal(as_uint8_images(images), [[[[0, 255, 255]]]])
    with pytest.raises(ValueError, match="batch, height, width, 3"):
        as_uint8_images(np.zeros((4, 4, 3)))


def write_label_only_graph(path) -> str:
    """A frozen graph as the original exported before 2019: `ImageTensor` uint8 [1, H, W, 3]
    -> `SemanticPredictions` int32 [1, H, W] (here: the index of the largest channel), and no
    `SemanticProbabilities`."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        image = tf.compat.v1.placeholder(tf.uint8, [1, None, None, 3], name="ImageTensor")
        tf.identity(tf.argmax(image, axis=-1, output_type=tf.int32), name="SemanticPredictions")
    with open(path, "wb") as f:
        f.write(graph.as_graph_def().SerializeToString())
    return str(path)


def write_fixed_crop_graph(path, crop) -> str:
    """A label-only frozen graph as the original's exports: the image padded to the fixed
    `crop` (larger images fail), labels = the largest channel, cut back to the input size."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        image = tf.compat.v1.placeholder(tf.uint8, [1, None, None, 3], name="ImageTensor")
        padded = tf.image.pad_to_bounding_box(image, 0, 0, *crop)
        labels = tf.argmax(padded, axis=-1, output_type=tf.int32)
        size = tf.shape(image)
        tf.identity(labels[:, :size[1], :size[2]], name="SemanticPredictions")
    with open(path, "wb") as f:
        f.write(graph.as_graph_def().SerializeToString())
    return str(path)


def test_fixed_crop_graph_resizes_larger_images_to_fit_and_labels_back(tmp_path):
    import tensorflow as tf

    from deeplab.export.loading import CropFitted

    path = write_fixed_crop_graph(tmp_path / "fixed.pb", (33, 33))
    image = np.zeros((70, 45, 3), np.uint8)  # over 2x the crop, not a multiple of it
    image[:, :20, 0] = 200  # red left, green right, blue bottom: labels 0, 1, 2
    image[:, 20:, 1] = 200
    image[50:, :, 2] = 250
    model = load_exported_model(path)
    assert isinstance(model, CropFitted) and model.crop_size == (33, 33)  # probed, not stored
    assert model.num_classes == 3
    with pytest.raises(tf.errors.InvalidArgumentError):
        model.model.labels(image[None])  # the graph itself refuses it, as the original's did
    assert load_exported_model(path, crop_size=(40, 40)).crop_size == (40, 40)  # as given
    assert load_exported_model(write_label_only_graph(tmp_path / "any.pb")).crop_size is None
    # (its ArgMax follows the input size: no fixed crop, any image runs as it is)
    labels = model.labels(image[None])[0]
    assert labels.shape == (70, 45)
    agree = (labels == image.argmax(-1)).mean()
    assert agree > 0.93, agree  # all but the pixels next to the colour edges
    small = image[::3, ::3]
    np.testing.assert_array_equal(model.labels(small[None])[0], small.argmax(-1))
    strict = load_exported_model(path, crop_size=(33, 33), resize_to_crop=False)
    with pytest.raises(ExportError, match=r"fixed.pb: image 70x45 is larger than the graph's "
                                          r"fixed crop 33x33"):
        strict.labels(image[None])


def test_label_only_frozen_graph_gives_labels_and_says_probabilities_are_unavailable(tmp_path):
    model = load_exported_model(write_label_only_graph(tmp_path / "old.pb"))
    images = np.random.RandomState(0).randint(0, 256, (2, 5, 7, 3)).astype(np.uint8)
    assert not model.has_probabilities
    np.testing.assert_array_equal(model.labels(images), images.argmax(-1))
    one_hot = model.one_hot(images, 4)
    assert one_hot.shape == (2, 5, 7, 4)
    np.testing.assert_array_equal(one_hot.argmax(-1), images.argmax(-1))
    with pytest.raises(ExportError, match="gives labels only .*use its labels"):
        model(images)
    with pytest.raises(ValueError, match="outside the 2 classes"):
        model.one_hot(images, 2)


def _foreign_tflite(path, dtype, labels_out: bool) -> str:
    """A TFLite model shaped like Google's deeplabv3_257_mv_gpu.tflite: fixed input
    [1, 33, 33, 3] (`dtype`; float expects [-1, 1]) and logits out (10 x the input, so the
    labels are the largest channel), or with `labels_out` int32 labels [1, 33, 33]."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 33, 33, 3], dtype)])
    def segment(image):
        logits = tf.cast(image, tf.float32) * 10.0
        return tf.argmax(logits, -1, output_type=tf.int32) if labels_out else logits

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [segment.get_concrete_function()], segment)
    with open(path, "wb") as f:
        f.write(converter.convert())
    return str(path)


@pytest.mark.parametrize("dtype, labels_out", [("float32", False), ("uint8", True)])
def test_foreign_tflite_signature_is_read_and_adapted(tmp_path, dtype, labels_out):
    import tensorflow as tf

    path = _foreign_tflite(tmp_path / "foreign.tflite", getattr(tf, dtype), labels_out)
    model = load_exported_model(path)
    assert model.fixed_size == (33, 33) and model.has_probabilities == (not labels_out)
    image = np.zeros((70, 45, 3), np.uint8)  # other size than the model's: resized both ways
    image[:, :20, 0] = 200
    image[:, 20:, 2] = 180
    labels = model.labels(image[None])[0]
    assert labels.shape == (70, 45)
    assert (labels[:, :18] == 0).all() and (labels[:, 23:] == 2).all()
    if labels_out:
        with pytest.raises(ExportError, match="labels only"):
            model(image[None])
        return
    probabilities = model(image[None])[0]  # logits ([-1, 1] input x 10) -> softmax
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    want = np.exp(10 * (np.array([200, 0, 0]) / 127.5 - 1))
    np.testing.assert_allclose(probabilities[0, 0], want / want.sum(), rtol=1e-4)
