import json
import os

import numpy as np
import pytest

from deeplab.data import descriptors


def test_builtin_descriptors_match_the_original():
    voc = descriptors.get_descriptor("pascal_voc_seg")
    assert (voc.num_classes, voc.ignore_label) == (21, 255)
    assert voc.splits == {"train": 1464, "train_aug": 10582, "trainval": 2913, "val": 1449}
    city = descriptors.get_descriptor("cityscapes")
    assert (city.num_classes, city.ignore_label, city.splits["train_fine"]) == (19, 255, 2975)
    ade = descriptors.get_descriptor("ade20k")
    assert (ade.num_classes, ade.ignore_label, ade.splits) == (151, 0, {"train": 20210,
                                                                        "val": 2000})
    assert ade.class_names[1] == "wall" and ade.class_names[150] == "flag"
    syn = descriptors.get_descriptor("synthetic")
    assert (syn.num_classes, syn.ignore_label, len(syn.class_names)) == (6, 255, 6)
    with pytest.raises(ValueError, match="unknown dataset 'coco'.*pascal_voc_seg"):
        descriptors.get_descriptor("coco")


def test_load_descriptor_prefers_dataset_json(tmp_path):
    assert descriptors.load_descriptor(str(tmp_path), "cityscapes").num_classes == 19
    with pytest.raises(ValueError, match="no dataset.json"):
        descriptors.load_descriptor(str(tmp_path))
    mine = descriptors.DatasetDescriptor("mine", 3, 0, {"train": 4}, ("a", "b", "c"))
    descriptors.write_descriptor(str(tmp_path), mine)
    assert json.loads((tmp_path / "dataset.json").read_text())["splits"] == {"train": 4}
    assert descriptors.load_descriptor(str(tmp_path), "cityscapes") == mine


def test_bad_descriptor_file_is_named(tmp_path):
    (tmp_path / "dataset.json").write_text('{"num_classes": 3}')
    with pytest.raises(ValueError, match=r"dataset.json: .*ignore_label"):
        descriptors.load_descriptor(str(tmp_path))
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        descriptors.DatasetDescriptor("x", 3, 255, {}, ("a", "b"))


def test_registry_carries_palettes_and_label_ids():
    city = descriptors.get_descriptor("cityscapes")
    assert city.colormap[13] == (0, 0, 142) and len(city.colormap) == 256
    assert city.label_ids[0] == 7 and city.label_ids[18] == 33 and city.label_ids[255] == 0
    np.testing.assert_array_equal(city.to_label_ids(np.array([[0, 18, 255]])), [[7, 33, 0]])
    with pytest.raises(ValueError, match=r"among 0\.\.18 or 255, got \[19\]"):
        city.to_label_ids(np.array([19]))
    assert descriptors.palette_names() == ("pascal", "cityscapes", "ade20k")
    assert descriptors.palette("voc") == descriptors.get_descriptor("pascal_voc_seg").colormap
    assert descriptors.get_descriptor("synthetic").colormap == descriptors.palette("pascal")
    with pytest.raises(ValueError, match="already registered"):
        descriptors.register(descriptors.DatasetDescriptor("other", 2, 255, {}),
                             palette_aliases=("pascal",))
    with pytest.raises(ValueError, match="unknown colour map 'nope'"):
        descriptors.palette("nope")


def test_dataset_json_round_trip_and_old_files(tmp_path):
    for name in descriptors.registered_names():
        known = descriptors.get_descriptor(name)
        assert descriptors.DatasetDescriptor.from_json(known.to_json()) == known
    assert descriptors.get_descriptor("ade20k").to_json()["colormap"] == "ade20k"
    # A Cityscapes dataset.json written before palettes and ids were stored.
    (tmp_path / "dataset.json").write_text('{"name": "cityscapes", "num_classes": 19, '
                                           '"ignore_label": 255, "splits": {"val_fine": 3}}')
    old = descriptors.load_descriptor(str(tmp_path))
    assert old.colormap == descriptors.palette("cityscapes") and old.label_ids[1] == 8
    colors = np.array([[1, 2, 3], [4, 5, 6]])
    mine = descriptors.DatasetDescriptor("mine", 2, 255, {"train": 1}, colormap=colors,
                                         label_encoding={"binary_masks": True})
    descriptors.write_descriptor(str(tmp_path), mine)
    assert json.loads((tmp_path / "dataset.json").read_text())["colormap"] == [[1, 2, 3],
                                                                               [4, 5, 6]]
    assert descriptors.load_descriptor(str(tmp_path)) == mine
    assert [p.name for p in tmp_path.iterdir()] == ["dataset.json"]  # no temporary left


def test_write_uses_unique_temporary_files(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    mine = descriptors.DatasetDescriptor("mine", 2, 255, {})
    descriptors.write_descriptor(str(tmp_path), mine)
    descriptors.write_descriptor(str(tmp_path), mine)
    assert len(set(seen)) == 2 and "dataset.json.tmp" not in seen
