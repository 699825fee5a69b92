"""Pictures of predictions: colours, overlay, ground truth, raw maps, names."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from deeplab.evaluate.evaluator import Prediction
from deeplab.vis import colormap
from deeplab.vis.visualizer import RAW_DIR, SEGMENTATION_DIR, VOID_COLOR, Visualizer


def read(path):
    with Image.open(path) as image:
        return np.asarray(image)


def item(name="frankfurt_000000_000294_leftImg8bit", seed=0, classes=19, ignore=255):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, classes, (6, 8))
    label[0, 0] = ignore
    return Prediction(name, rng.uniform(0, 255, (6, 8, 3)).astype(np.float32), label,
                      rng.integers(0, classes, (6, 8)).astype(np.int32))


def test_pictures_and_cityscapes_raw_label_ids(tmp_path):
    vis = Visualizer(str(tmp_path), "cityscapes", save_raw=True,
                     raw_id_map=colormap.cityscapes_train_id_to_label_id, ignore_label=255)
    one = item()
    paths = vis.save(one)
    stem = os.path.join(str(tmp_path), SEGMENTATION_DIR, one.filename)
    assert paths == [f"{stem}_{k}.png" for k in ("image", "prediction", "overlay", "label")] + [
        os.path.join(str(tmp_path), RAW_DIR, one.filename + ".png")]
    image = np.clip(np.rint(one.image), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(read(paths[0]), image)
    np.testing.assert_array_equal(read(paths[1]), colormap.colorize(one.prediction, "cityscapes"))
    np.testing.assert_array_equal(read(paths[2]),
                                  colormap.overlay(image, one.prediction, "cityscapes", 0.5))
    truth = read(paths[3])
    np.testing.assert_array_equal(truth[0, 0], (0, 0, 0))  # 255 is black in this palette
    raw = read(paths[4])
    assert raw.dtype == np.uint8 and raw.shape == (6, 8)
    table = np.array(colormap.CITYSCAPES_TRAIN_ID_TO_LABEL_ID)
    np.testing.assert_array_equal(raw, table[one.prediction])


def test_raw_maps_are_class_indices_and_repeated_names_stay_apart(tmp_path):
    vis = Visualizer(str(tmp_path), "pascal_voc_seg", save_raw=True)
    first, second = item("dir/2007_000032", 1, 21), item("2007_000032", 2, 21)
    raw_first = vis.save(first)[-1]
    raw_second = vis.save(second)[-1]
    assert os.path.basename(raw_first) == "2007_000032.png"
    assert os.path.basename(raw_second) == "2007_000032_1.png"
    np.testing.assert_array_equal(read(raw_first), first.prediction)
    np.testing.assert_array_equal(read(raw_second), second.prediction)
    vis.reset()  # a second pass overwrites instead of adding _2
    assert os.path.basename(vis.save(first)[-1]) == "2007_000032.png"


def test_ignore_label_outside_the_palette_is_drawn_void(tmp_path):
    vis = Visualizer(str(tmp_path), "ade20k", ignore_label=255)
    truth = read(vis.save(item("x", classes=151))[3])
    np.testing.assert_array_equal(truth[0, 0], VOID_COLOR)
    assert not os.path.isdir(os.path.join(str(tmp_path), RAW_DIR))


def test_prediction_outside_the_palette_is_a_clear_error(tmp_path):
    vis = Visualizer(str(tmp_path), "ade20k")
    bad = item("x", classes=151)
    bad.prediction[0, 0] = 200
    with pytest.raises(ValueError, match=r"outside the 151-entry 'ade20k' palette"):
        vis.save(bad)
