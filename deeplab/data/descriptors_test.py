import json

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
