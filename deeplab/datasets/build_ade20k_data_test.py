import numpy as np
import pytest

from deeplab.datasets import build_ade20k_data as ade
from deeplab.datasets import build_data
from deeplab.datasets import testing_utils as tu


def test_convert_reads_back_bit_exact(tmp_path):
    rng = np.random.default_rng(41)
    root = tmp_path / "ADEChallengeData2016"
    truth = {}
    for folder, names in (("training", ["ADE_train_00000002", "ADE_train_00000001"]),
                          ("validation", ["ADE_val_00000001"])):
        for name in names:
            image = tu.random_image(rng, 7, 5)
            label = tu.random_label(rng, 7, 5, 151)
            label[0, 0] = 150
            tu.save(image, str(root / "images" / folder / f"{name}.jpg"), quality=95)
            tu.save(label, str(root / "annotations" / folder / f"{name}.png"))
            truth[name] = (str(root / "images" / folder / f"{name}.jpg"), label)
    out = str(tmp_path / "out")
    results = ade.convert_ade20k(str(tmp_path), out, num_shards=1)
    assert {s: r.written for s, r in results.items()} == {"train": 2, "val": 1}
    train = tu.read_back(out, "train")
    assert list(train) == ["ADE_train_00000001", "ADE_train_00000002"]
    for name, got in {**train, **tu.read_back(out, "val")}.items():
        assert np.array_equal(got["image"], tu.decode_jpeg_file(truth[name][0]))
        assert np.array_equal(got["label"], truth[name][1])


def test_missing_annotation_is_named(tmp_path):
    rng = np.random.default_rng(42)
    tu.save(tu.random_image(rng, 4, 4), str(tmp_path / "images/training/a.jpg"))
    with pytest.raises(build_data.InvalidPairError, match=r"annotations/training/a.png: file "
                       "not found"):
        ade.convert_ade20k(str(tmp_path), str(tmp_path / "out"))
