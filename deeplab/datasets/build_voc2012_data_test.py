import numpy as np
import pytest
import scipy.io

from deeplab.data import descriptors
from deeplab.datasets import build_data, build_voc2012_data
from deeplab.datasets import testing_utils as tu

VOC_SETS = {
    "train": ["2007_000032", "2007_000039"],
    "val": ["2007_000033"],
}
SBD_SETS = {"train": ["2008_000002", "2007_000033"], "val": ["2008_000003"]}


def _voc_tree(root):
    """VOCdevkit/VOC2012 with palette labels for VOC ids and .mat labels for SBD ids."""
    rng = np.random.default_rng(21)
    voc = root / "VOCdevkit" / "VOC2012"
    sbd = root / "benchmark_RELEASE" / "dataset"
    truth = {}
    all_ids = sorted(set(sum(VOC_SETS.values(), []) + sum(SBD_SETS.values(), [])))
    voc_ids = set(sum(VOC_SETS.values(), []))
    for i, name in enumerate(all_ids):
        h, w = 6 + i, 10 - i
        image = tu.random_image(rng, h, w)
        tu.save(image, str(voc / "JPEGImages" / f"{name}.jpg"), quality=90)
        label = tu.random_label(rng, h, w, 21, ignore=255)
        if name in voc_ids:
            tu.save_palette_png(label, str(voc / "SegmentationClass" / f"{name}.png"))
        else:
            label[label == 255] = 0  # SBD has no boundary label
            (sbd / "cls").mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(str(sbd / "cls" / f"{name}.mat"),
                             {"GTcls": {"Segmentation": label, "CategoriesPresent": [1]}})
        truth[name] = (str(voc / "JPEGImages" / f"{name}.jpg"), label)
    sets = voc / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    for split, names in VOC_SETS.items():
        (sets / f"{split}.txt").write_text("\n".join(names) + "\n")
    (sets / "trainval.txt").write_text("\n".join(VOC_SETS["train"] + VOC_SETS["val"]) + "\n")
    for split, names in SBD_SETS.items():
        (sbd / f"{split}.txt").write_text("\n".join(names) + "\n")
    return truth


def test_voc_and_train_aug_read_back_bit_exact(tmp_path):
    truth = _voc_tree(tmp_path)
    out = str(tmp_path / "out")
    results = build_voc2012_data.convert_voc(str(tmp_path / "VOCdevkit"), out,
                                             sbd_root=str(tmp_path / "benchmark_RELEASE"),
                                             num_shards=2)
    assert {s: r.written for s, r in results.items()} == {
        "train": 2, "val": 1, "trainval": 3, "train_aug": 4}
    for split in ("train", "val", "trainval", "train_aug"):
        back = tu.read_back(out, split)
        if split == "train_aug":
            # SBD train + val + VOC train, minus VOC val (2007_000033), sorted.
            assert list(back) == ["2007_000032", "2007_000039", "2008_000002", "2008_000003"]
        for name, got in back.items():
            image_path, label = truth[name]
            assert np.array_equal(got["image"], tu.decode_jpeg_file(image_path))
            assert np.array_equal(got["label"], label), (split, name)
    desc = descriptors.load_descriptor(out)
    assert desc.splits == {"train": 2, "val": 1, "trainval": 3, "train_aug": 4}
    assert desc.num_classes == 21 and desc.class_names[1] == "aeroplane"


def test_missing_split_file(tmp_path):
    _voc_tree(tmp_path)
    (tmp_path / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt").unlink()
    with pytest.raises(build_data.ConversionError,
                       match=r"ImageSets/Segmentation/val.txt: split file not found"):
        build_voc2012_data.convert_voc(str(tmp_path / "VOCdevkit"), str(tmp_path / "out"))


def test_wrong_root_and_bad_mat(tmp_path):
    with pytest.raises(build_data.ConversionError, match=r"no JPEGImages/ folder"):
        build_voc2012_data.find_voc_dir(str(tmp_path))
    (tmp_path / "x.mat").write_bytes(b"garbage")
    with pytest.raises(build_data.InvalidPairError, match=r"x.mat: cannot read SBD"):
        build_voc2012_data.read_sbd_label(str(tmp_path / "x.mat"))
