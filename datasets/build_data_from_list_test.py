import numpy as np
import pytest

from datasets import build_data, build_data_from_list, make_list
from datasets import testing_utils as tu
from deeplab.data import descriptors


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
