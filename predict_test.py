"""predict.py end to end: bounded memory on large images, pad-to-crop as the export, and
label-only frozen graphs (predict and eval), each in a child process as a user runs them."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from deeplab.export.runtimes_test import write_fixed_crop_graph, write_label_only_graph
from deeplab.export.testing import assert_labels_agree
from eval_test import finish, start, tiny_run  # noqa: F401 - the session fixture

SMALL = (40, 56)  # smaller than the 48x64 crop below


def _synthetic_image(path, size, seed):
    """A synthetic val picture; seeds 0..2 at 40x56 are the ones `tiny_run`'s model was
    calibrated on, so its labels vary there (elsewhere its softmax may saturate)."""
    from deeplab.datasets.synthetic import generate_example

    image = generate_example(seed, "val", size)[0]
    Image.fromarray(np.asarray(image, np.uint8)).save(path)
    return np.asarray(image, np.float32)


def _mosaic(path):
    """80 x 112: the four 40x56 synthetic val pictures 0..3 in a 2 x 2 grid."""
    from deeplab.datasets.synthetic import generate_example

    tiles = [generate_example(i, "val", SMALL)[0] for i in range(4)]
    image = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)
    Image.fromarray(np.asarray(image, np.uint8)).save(path)
    return np.asarray(image, np.float32)


def _labels(path):
    return np.asarray(Image.open(path))


@pytest.fixture(scope="module")
def padded_run(tmp_path_factory):
    """A checkpoint directory whose random MobileNetV2 has BatchNorm statistics of the
    synthetic val pictures 0, 1 padded to 48x64, and labels that vary on both (the first
    seed whose network does), and the pictures: {"train": dir, "images": [png paths]}."""
    import keras

    from deeplab.checkpoints.io import model_checkpoint
    from deeplab.datasets.synthetic import generate_example
    from deeplab.model.deeplab import build_model
    from deeplab.model.options import ModelOptions
    from deeplab.model.predict import Predictor
    from deeplab.utils.run_options import save_run_options

    root = tmp_path_factory.mktemp("padded_run")
    options = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.5, num_classes=6)
    padded, paths = np.full((2, 48, 64, 3), 127.5, np.float32), []
    for i in range(2):
        image = generate_example(i, "val", SMALL)[0]
        paths.append(str(root / f"im{i}.png"))
        Image.fromarray(np.asarray(image, np.uint8)).save(paths[-1])
        padded[i, :SMALL[0], :SMALL[1]] = image
    for seed in range(1, 40):  # the first random network whose labels vary on both
        keras.utils.set_random_seed(seed)
        model = build_model(options)
        norms = [layer for layer in model._flatten_layers()
                 if isinstance(layer, keras.layers.BatchNormalization)]
        for layer in norms:
            layer.momentum = 0.0
        model(padded, training=True)
        labels = Predictor(model, options).labels(padded).numpy()
        if all(len(np.unique(labels[i, :SMALL[0], :SMALL[1]])) > 1 for i in range(2)):
            break
    model_checkpoint(model).write(str(root / "train" / "model.ckpt-1"))
    save_run_options(str(root / "train"), model=options)
    return {"train": str(root / "train"), "images": paths}


def _model(tiny_run):  # noqa: F811
    from deeplab.entry import load_model

    return load_model(tiny_run["options"], tiny_run["prefix"])


def test_large_images_run_as_windows_and_small_ones_whole(tiny_run, tmp_path):  # noqa: F811
    from deeplab.model.predict import InferenceOptions, Predictor

    image = _mosaic(tmp_path / "big.png")
    small = _synthetic_image(tmp_path / "small.png", SMALL, seed=2)
    common = [f"--checkpoint={tiny_run['train']}", str(tmp_path / "big.png"),
              str(tmp_path / "small.png")]
    limited = start("predict.py", f"--output_dir={tmp_path / 'limited'}",
                    "--max_image_pixels=1600", "--save_probabilities", *common)
    default = start("predict.py", f"--output_dir={tmp_path / 'default'}", *common)
    for process in (limited, default):
        code, _, err = finish(process, timeout=300)
        assert code == 0, err[-3000:]
    model, options = _model(tiny_run), tiny_run["options"]
    whole = Predictor(model, options, InferenceOptions(max_pixels=None))
    windowed = Predictor(model, options, InferenceOptions(max_pixels=1600))  # 40x40 windows
    got = _labels(tmp_path / "limited" / "big.png")
    np.testing.assert_array_equal(got, windowed.labels(image[None]).numpy()[0])
    probabilities = np.load(tmp_path / "limited" / "big_probabilities.npy")
    np.testing.assert_allclose(probabilities, windowed.probabilities(image[None])[0], atol=1e-6)
    whole_probabilities = whole.probabilities(image[None]).numpy()[0]
    assert np.abs(probabilities - whole_probabilities).max() > 1e-3  # windows did run
    assert len(np.unique(got)) > 1
    np.testing.assert_array_equal(_labels(tmp_path / "limited" / "small.png"),
                                  windowed.labels(small[None]).numpy()[0])
    for name, picture in (("big", image), ("small", small)):  # within the default: whole
        np.testing.assert_array_equal(_labels(tmp_path / "default" / f"{name}.png"),
                                      whole.labels(picture[None]).numpy()[0])


def test_crop_size_pads_as_the_frozen_export_and_label_only_graphs_run(
        tiny_run, padded_run, tmp_path):  # noqa: F811
    from deeplab.export.loading import load_exported_model

    images, run = padded_run["images"], padded_run["train"]
    old = write_label_only_graph(tmp_path / "old.pb")
    export = start("export_model.py", f"--checkpoint_path={run}",
                   f"--export_path={tmp_path / 'exported'}", "--format=frozen",
                   "--crop_size=48", "--crop_size=64", "--output_stride=16")
    padded = start("predict.py", f"--checkpoint={run}", "--crop_size=48,64",
                   f"--output_dir={tmp_path / 'padded'}", *images)
    label_only = start("predict.py", f"--model={old}", f"--output_dir={tmp_path / 'old'}",
                       *images)
    asked = start("predict.py", f"--model={old}", f"--output_dir={tmp_path / 'asked'}",
                  "--save_probabilities", *images)
    Image.fromarray(np.full((520, 30, 3), 90, np.uint8)).save(tmp_path / "tall.png")
    fixed = write_fixed_crop_graph(tmp_path / "fixed.pb", (513, 513))  # the original's crop
    refused = start("predict.py", f"--model={fixed}", f"--output_dir={tmp_path / 'refused'}",
                    "--no_resize_to_crop", str(tmp_path / "tall.png"))
    coloured = start("predict.py", f"--model={old}", f"--output_dir={tmp_path / 'colour'}",
                     "--output_format=all", "--dataset=pascal_voc_seg", *images)
    evaluated = start("eval.py", f"--model={old}", f"--eval_logdir={tmp_path / 'eval'}",
                      f"--dataset_dir={tiny_run['data']}", "--eval_crop_size=",
                      "--max_number_of_evaluations=1")
    for process in (export, padded, label_only, evaluated, coloured):
        code, _, err = finish(process, timeout=600)
        assert code == 0, err[-3000:]
    frozen = load_exported_model(str(tmp_path / "exported" / "frozen_inference_graph.pb"))
    for path in images:
        name = os.path.splitext(os.path.basename(path))[0]
        image = np.asarray(Image.open(path))
        want = frozen.labels(image[None])[0]
        assert len(np.unique(want)) > 1
        assert_labels_agree(_labels(tmp_path / "padded" / f"{name}.png"), want)
        np.testing.assert_array_equal(_labels(tmp_path / "old" / f"{name}.png"),
                                      image.argmax(-1))
        _check_colour_outputs(tmp_path / "colour", name, image)
    code, _, err = finish(asked)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "probabilities are not available" in errors[0]
    code, _, err = finish(refused)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err and len(errors) == 1
    assert "tall.png" not in errors[0] and "image 520x30 is larger than the graph's fixed crop " \
        "513x513" in errors[0]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["num_images"] == 3 and 0.0 <= metrics["miou"] <= 1.0


def _check_colour_outputs(folder, name, image):
    """--output_format=all: a P-mode PNG holding the class ids in the pascal colours, and an
    overlay of the image with a legend band below it."""
    from deeplab.vis.colormap import create_colormap

    pascal = create_colormap("pascal")
    with Image.open(folder / f"{name}.png") as palette:
        assert palette.mode == "P"
        np.testing.assert_array_equal(np.asarray(palette), image.argmax(-1))
        np.testing.assert_array_equal(np.reshape(palette.getpalette()[:9], (3, 3)), pascal[:3])
    overlay = np.asarray(Image.open(folder / f"{name}_overlay.png"))
    height, width = image.shape[:2]
    assert overlay.shape[1] == width and overlay.shape[0] >= height + 14
    want = np.rint((image.astype(float) + pascal[image.argmax(-1)]) / 2)
    np.testing.assert_array_equal(overlay[:height], want.astype(np.uint8))
    legend = overlay[height:]
    for c in np.unique(image.argmax(-1)):  # each class present has its swatch in the legend
        assert (legend == pascal[c]).all(-1).any()


def test_a_checkpoint_of_other_class_count_says_how_many_it_has(tiny_run, tmp_path):  # noqa: F811
    _synthetic_image(tmp_path / "a.png", SMALL, seed=5)
    code, _, err = finish(start("predict.py", f"--checkpoint={tiny_run['train']}",
                                "--num_classes=21", f"--output_dir={tmp_path}",
                                str(tmp_path / "a.png")))
    assert code == 2 and "Traceback" not in err
    assert "error: the checkpoint's logits have 6 classes, the model 21" in err
