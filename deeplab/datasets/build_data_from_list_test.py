import os

import numpy as np
import pytest

from deeplab.data import descriptors
from deeplab.datasets import build_data, build_data_from_list, make_list
from deeplab.datasets import testing_utils as tu


def _tree(root, names, ext="png"):
    rng = np.random.default_rng(11)
    truth = {}
    for i, name in enumerate(names):
        image = tu.random_image(rng, 5 + i, 9 - i)
        label = tu.random_label(rng, 5 + i, 9 - i, 4, ignore=255)
        tu.save(image, str(root / "images" / f"{name}.{ext}"))
        tu.save(label, str(root / "labels" / f"{name}.png"))
        truth[name] = (image, label)
    return truth


def test_make_list_then_convert_reads_back_bit_exact(tmp_path):
    truth = _tree(tmp_path / "data", ["b", "a", "c"])
    lst = str(tmp_path / "train.txt")
    assert make_list.write_list(str(tmp_path / "data" / "images"),
                                str(tmp_path / "data" / "labels"), lst) == 3
    assert (tmp_path / "train.txt").read_text().splitlines() == [
        "images/a.png labels/a.png", "images/b.png labels/b.png", "images/c.png labels/c.png"]
    out = str(tmp_path / "out")
    result = build_data_from_list.convert_list(str(tmp_path / "data"), lst, "train", out,
                                               num_classes=4, class_names="wxyz", num_shards=2)
    assert result.written == 3
    back = tu.read_back(out, "train")
    assert list(back) == ["a", "b", "c"]
    for name, (image, label) in truth.items():
        assert np.array_equal(back[name]["image"], image)
        assert np.array_equal(back[name]["label"], label)
    desc = descriptors.load_descriptor(out)
    assert (desc.num_classes, desc.ignore_label, desc.splits) == (4, 255, {"train": 3})
    assert desc.class_names == ("w", "x", "y", "z")


def test_jpeg_images_are_stored_byte_for_byte(tmp_path):
    _tree(tmp_path, ["x"], ext="jpg")
    (tmp_path / "l.txt").write_text("images/x.jpg labels/x.png\n")
    out = str(tmp_path / "out")
    build_data_from_list.convert_list(str(tmp_path), str(tmp_path / "l.txt"), "val", out, 4)
    back = tu.read_back(out, "val")
    assert np.array_equal(back["x"]["image"], tu.decode_jpeg_file(str(tmp_path / "images/x.jpg")))


def test_bad_list_line_and_missing_list(tmp_path):
    (tmp_path / "l.txt").write_text("a.png b.png\nonly_one.png\n")
    with pytest.raises(build_data.ConversionError, match=r"l.txt: entry 2 'only_one.png'"):
        build_data_from_list.read_list(str(tmp_path), str(tmp_path / "l.txt"))
    with pytest.raises(build_data.ConversionError, match=r"missing.txt: split file not found"):
        build_data_from_list.read_list(str(tmp_path), str(tmp_path / "missing.txt"))


def test_make_list_reports_unmatched(tmp_path):
    _tree(tmp_path, ["a", "b"])
    (tmp_path / "labels" / "b.png").unlink()
    with pytest.raises(build_data.ConversionError, match=r"images/b.png: no matching label"):
        make_list.write_list(str(tmp_path / "images"), str(tmp_path / "labels"),
                             str(tmp_path / "l.txt"))
    count = make_list.write_list(str(tmp_path / "images"), str(tmp_path / "labels"),
                                 str(tmp_path / "l.txt"), allow_unmatched=True)
    assert count == 1


def _masks_dataset(root, labels, save_label):
    """Images + labels written by save_label(label, path); returns the list file path."""
    rng = np.random.default_rng(12)
    lines = []
    for i, label in enumerate(labels):
        tu.save(tu.random_image(rng, *label.shape[:2]), str(root / "images" / f"{i}.png"))
        save_label(label, str(root / "labels" / f"{i}.png"))
        lines.append(f"images/{i}.png labels/{i}.png")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return str(root / "list.txt")


def _convert(tmp_path, lst, num_classes, **kwargs):
    out = str(tmp_path / "out")
    build_data_from_list.convert_list(str(tmp_path), lst, "train", out, num_classes, **kwargs)
    back = tu.read_back(out, "train")
    return [back[str(i)]["label"] for i in range(len(back))], descriptors.load_descriptor(out)


def test_voc_palette_colour_masks_convert_to_their_class_indices(tmp_path):
    rng = np.random.default_rng(13)
    labels = [tu.random_label(rng, 7, 9, 21, ignore=255) for _ in range(2)]
    colors = np.array(descriptors.palette("pascal"), np.uint8)
    lst = _masks_dataset(tmp_path, labels, lambda label, path: tu.save(colors[label], path))
    got, desc = _convert(tmp_path, lst, 21, label_colormap="pascal")
    for label, back in zip(labels, got, strict=True):
        np.testing.assert_array_equal(back, label)
    assert desc.label_encoding == {"label_colormap": "pascal",
                                   "unknown_color_pixels": {"train": 0}}
    assert desc.colormap == descriptors.palette("pascal")


def test_cityscapes_colour_masks_unknown_colours_become_ignore(tmp_path):
    rng = np.random.default_rng(14)
    label = tu.random_label(rng, 8, 10, 19, ignore=255)
    colors = np.array(descriptors.palette("cityscapes"), np.uint8)
    rgb = colors[label]
    rgb[3, :4] = (250, 170, 160)  # "parking": a Cityscapes colour without a train id
    lst = _masks_dataset(tmp_path, [rgb], lambda array, path: tu.save(array, path))
    (got,), desc = _convert(tmp_path, lst, 19, label_colormap="cityscapes")
    expected = label.copy()
    expected[3, :4] = 255
    np.testing.assert_array_equal(got, expected)
    assert desc.label_encoding["unknown_color_pixels"] == {"train": 4}
    assert desc.class_statistics["train"]["ignore_pixels"] == np.count_nonzero(expected == 255)


def test_colormap_file_and_its_errors(tmp_path):
    (tmp_path / "colors.txt").write_text("# r g b\n0 0 0 sky\n255,0,0 road\n0 255 0\n")
    label = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    colors = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.uint8)
    lst = _masks_dataset(tmp_path, [colors[label]], lambda array, path: tu.save(array, path))
    (got,), _ = _convert(tmp_path, lst, 3, label_colormap=str(tmp_path / "colors.txt"))
    np.testing.assert_array_equal(got, label)
    with pytest.raises(build_data.ConversionError, match="--label_colormap: 'nope' is neither"):
        _convert(tmp_path, lst, 3, label_colormap="nope")
    (tmp_path / "same.txt").write_text("0 0 0\n0 0 0\n1 1 1\n")
    with pytest.raises(build_data.ConversionError, match="classes 0 and 1 have the same colour"):
        _convert(tmp_path, lst, 3, label_colormap=str(tmp_path / "same.txt"))


@pytest.mark.parametrize("high,mode", [(255, None), (1, None), (255, "RGB")])
def test_binary_masks_convert_to_0_and_1(tmp_path, high, mode):
    rng = np.random.default_rng(15)
    masks = [rng.integers(0, 2, (6, 7)).astype(np.uint8) for _ in range(2)]

    def save(mask, path):
        array = mask * high
        tu.save(np.repeat(array[..., None], 3, -1) if mode else array, path)

    lst = _masks_dataset(tmp_path, masks, save)
    got, desc = _convert(tmp_path, lst, 2, binary_masks=True)
    for mask, back in zip(masks, got, strict=True):
        np.testing.assert_array_equal(back, mask)
    assert desc.label_encoding == {"binary_masks": True}


def test_binary_masks_refuse_other_values(tmp_path):
    lst = _masks_dataset(tmp_path, [np.array([[0, 255, 7]], np.uint8)], tu.save)
    with pytest.raises(build_data.InvalidPairError, match=r"0.png: --binary_masks: values 7"):
        _convert(tmp_path, lst, 2, binary_masks=True)
    with pytest.raises(build_data.ConversionError, match="--num_classes=2, not 3"):
        _convert(tmp_path, lst, 3, binary_masks=True)


def test_list_with_byte_order_mark_and_entries_outside_the_root(tmp_path):
    _tree(tmp_path / "data", ["a"])
    (tmp_path / "bom.txt").write_bytes("\ufeffimages/a.png labels/a.png\n".encode())
    assert build_data_from_list.read_list(str(tmp_path / "data"), str(tmp_path / "bom.txt"))[0][
        1] == str(tmp_path / "data" / "images" / "a.png")
    tu.save(np.zeros((2, 2, 3), np.uint8), str(tmp_path / "secret.png"))
    (tmp_path / "up.txt").write_text("../secret.png labels/a.png\n")
    with pytest.raises(build_data.ConversionError,
                       match=r"up.txt: entry 1: ../secret.png lies outside --data_root"):
        build_data_from_list.read_list(str(tmp_path / "data"), str(tmp_path / "up.txt"))
    (tmp_path / "abs.txt").write_text(f"images/a.png {tmp_path}/secret.png\n")
    with pytest.raises(build_data.ConversionError, match="--allow_outside_data_root"):
        build_data_from_list.read_list(str(tmp_path / "data"), str(tmp_path / "abs.txt"))
    pairs = build_data_from_list.read_list(str(tmp_path / "data"), str(tmp_path / "up.txt"),
                                           allow_outside=True)
    assert os.path.normpath(pairs[0][1]) == str(tmp_path / "secret.png")


def test_dataset_json_holds_class_pixel_counts(tmp_path):
    rng = np.random.default_rng(16)
    labels = [tu.random_label(rng, 5, 6, 4, ignore=255) for _ in range(3)]
    labels[1][labels[1] == 3] = 0  # class 3 absent from one image
    lst = _masks_dataset(tmp_path, labels, tu.save)
    _, desc = _convert(tmp_path, lst, 4)
    stats = desc.class_statistics["train"]
    stacked = np.stack(labels)
    assert stats["pixels"] == [int(np.sum(stacked == c)) for c in range(4)]
    assert stats["images"] == [sum(int((x == c).any()) for x in labels) for c in range(4)]
    assert stats["image_pixels"] == [sum(x.size for x in labels if (x == c).any())
                                     for c in range(4)]
    assert stats["ignore_pixels"] == int(np.sum(stacked == 255))
