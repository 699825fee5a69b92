"""Tests for the palettes, colouring, overlays, train-id mapping and class names."""

from __future__ import annotations

import numpy as np
import pytest

from deeplab.data.descriptors import palette_owner
from deeplab.vis import colormap


def _names(name):
    return palette_owner(name).class_names


@pytest.mark.parametrize("name,size", [("pascal", 256), ("cityscapes", 256), ("ade20k", 151)])
def test_shape_and_dtype(name, size):
    palette = colormap.create_colormap(name)
    assert palette.shape == (size, 3) and palette.dtype == np.uint8


def test_pascal_published_entries():
    palette = colormap.create_colormap("pascal")
    expected = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128),
                (0, 128, 128), (128, 128, 128), (64, 0, 0), (192, 0, 0), (64, 128, 0)]
    assert [tuple(c) for c in palette[:11]] == expected
    assert tuple(palette[15]) == (192, 128, 128)  # person
    assert tuple(palette[20]) == (0, 64, 128)  # tvmonitor
    assert tuple(palette[255]) == (224, 224, 192)  # VOC's void boundary colour
    assert len({tuple(c) for c in palette}) == 256  # all distinct
    assert np.array_equal(colormap.create_colormap("pascal_voc_seg"), palette)


def test_cityscapes_published_entries():
    palette = colormap.create_colormap("cityscapes")
    assert tuple(palette[0]) == (128, 64, 128)  # road
    assert tuple(palette[1]) == (244, 35, 232)  # sidewalk
    assert tuple(palette[2]) == (70, 70, 70)  # building
    assert tuple(palette[11]) == (220, 20, 60)  # person
    assert tuple(palette[13]) == (0, 0, 142)  # car
    assert tuple(palette[18]) == (119, 11, 32)  # bicycle
    assert not palette[19:].any()  # padded with black, 255 included


def test_ade20k_published_entries():
    palette = colormap.create_colormap("ade20k")
    assert [tuple(c) for c in palette[:5]] == [
        (0, 0, 0), (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50)]
    assert tuple(palette[150]) == (92, 0, 255)


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown colour map 'mapillary'.*pascal"):
        colormap.create_colormap("mapillary")


def test_colorize_round_trip():
    rng = np.random.default_rng(0)
    for name, size in (("pascal", 256), ("ade20k", 151), ("cityscapes", 19)):
        label = rng.integers(0, size, (13, 17)).astype(np.uint8)
        rgb = colormap.colorize(label, name)
        assert rgb.shape == (13, 17, 3) and rgb.dtype == np.uint8
        palette = colormap.create_colormap(name)[:size]
        # Distinct palette colours: each pixel's colour identifies its label.
        recovered = np.argmax((rgb[:, :, None, :] == palette).all(-1), axis=-1)
        np.testing.assert_array_equal(recovered, label)


def test_colorize_errors():
    with pytest.raises(ValueError, match=r"label values \[151, 200\] outside the 151-entry"):
        colormap.colorize(np.array([[0, 151, 200]]), "ade20k")
    with pytest.raises(ValueError, match=r"\[-1\]"):
        colormap.colorize(np.array([[-1, 0]]), "pascal")
    with pytest.raises(TypeError, match="integer"):
        colormap.colorize(np.zeros((2, 2), np.float32), "pascal")


def test_overlay_arithmetic():
    image = np.array([[[100, 200, 0], [10, 20, 30]]], np.uint8)  # [1, 2, 3]
    label = np.array([[1, 255]])
    out = colormap.overlay(image, label, "pascal", alpha=0.25)
    # label 1 -> (128, 0, 0); label 255 -> (224, 224, 192).
    expected = [[[round(0.75 * 100 + 0.25 * 128), round(0.75 * 200), 0],
                 [round(0.75 * 10 + 0.25 * 224), round(0.75 * 20 + 0.25 * 224),
                  round(0.75 * 30 + 0.25 * 192)]]]
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.uint8
    kept = colormap.overlay(image, label, "pascal", alpha=0.25, ignore_label=255)
    np.testing.assert_array_equal(kept[0, 1], image[0, 1])
    np.testing.assert_array_equal(colormap.overlay(image, label, "pascal", alpha=0.0), image)
    np.testing.assert_array_equal(colormap.overlay(image, label, "pascal", alpha=1.0),
                                  colormap.colorize(label, "pascal"))


def test_overlay_errors():
    image = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="label shape"):
        colormap.overlay(image, np.zeros((5, 4), np.int32), "pascal")
    with pytest.raises(ValueError, match="uint8"):
        colormap.overlay(image.astype(np.float32), np.zeros((4, 5), np.int32), "pascal")
    with pytest.raises(ValueError, match="alpha"):
        colormap.overlay(image, np.zeros((4, 5), np.int32), "pascal", alpha=1.5)


def test_cityscapes_train_id_to_label_id():
    train_ids = np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
                          [10, 11, 12, 13, 14, 15, 16, 17, 18, 255]], np.uint8)
    label_ids = colormap.cityscapes_train_id_to_label_id(train_ids)
    assert label_ids.dtype == np.uint8 and label_ids.shape == train_ids.shape
    np.testing.assert_array_equal(
        label_ids.ravel(),
        [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33, 0])
    with pytest.raises(ValueError, match=r"0\.\.18 or 255, got \[19, 254\]"):
        colormap.cityscapes_train_id_to_label_id(np.array([19, 254, 3]))


def test_class_names():
    voc = _names("pascal")
    assert len(voc) == 21 and voc[:3] == ("background", "aeroplane", "bicycle")
    assert voc[15] == "person" and voc[20] == "tvmonitor"
    city = _names("cityscapes")
    assert len(city) == 19 and city[:3] == ("road", "sidewalk", "building")
    assert city[18] == "bicycle"
    ade = _names("ade20k")
    assert len(ade) == 151 and ade[:4] == ("other", "wall", "building", "sky")
    assert ade[150] == "flag"
    assert _names("pascal_voc_seg") is voc
    # One name per palette entry that a dataset uses.
    assert len(ade) == len(colormap.create_colormap("ade20k"))


def test_a_newly_registered_dataset_palette_reaches_the_pictures(tmp_path):
    """One registration (no other file touched): vis colours a dataset.json naming it."""
    import types

    from deeplab.data import descriptors
    from deeplab.vis.visualizer import Visualizer

    colors = ((10, 20, 30), (200, 100, 50), (0, 255, 0))
    descriptors.register(descriptors.DatasetDescriptor("toy", 3, 255, {"val": 1}, "abc",
                                                       colormap=colors))
    try:
        (tmp_path / "dataset.json").write_text('{"name": "toy", "num_classes": 3, '
                                               '"ignore_label": 255}')
        descriptor = descriptors.load_descriptor(str(tmp_path))
        assert descriptor.class_names == ("a", "b", "c") and "toy" in descriptors.palette_names()
        visualizer = Visualizer(str(tmp_path / "vis"), colormap.dataset_palette(descriptor))
        prediction = np.array([[0, 1, 2], [2, 1, 0]])
        item = types.SimpleNamespace(filename="x", image=np.zeros((2, 3, 3)), label=prediction,
                                     prediction=prediction)
        paths = visualizer.save(item)
        from PIL import Image

        np.testing.assert_array_equal(np.asarray(Image.open(paths[1])),
                                      np.array(colors, np.uint8)[prediction])
        np.testing.assert_array_equal(colormap.create_colormap("toy"), colors)  # by name
        assert colormap.dataset_palette(descriptor, "cityscapes") == "cityscapes"  # the flag
        city = descriptors.get_descriptor("cityscapes")
        assert colormap.dataset_palette(city) == "cityscapes"  # by name, for messages
    finally:
        descriptors.unregister("toy")
    assert colormap.dataset_palette(descriptors.DatasetDescriptor("c", 2, 255, {})) == "pascal"
