import numpy as np

from deeplab.datasets import build_cityscapes_data as cs
from deeplab.datasets import testing_utils as tu


def test_train_id_table_matches_official_ids():
    table = cs.train_id_table()
    assert table[7] == 0 and table[26] == 13 and table[33] == 18 and table[23] == 10
    assert table[0] == table[6] == table[9] == table[34] == table[255] == 255
    assert sorted(set(table.tolist()) - {255}) == list(range(19))


def test_convert_reads_back_train_ids_bit_exact(tmp_path):
    rng = np.random.default_rng(31)
    truth = {}
    for split, city, n in (("train", "aachen", 2), ("train", "bremen", 1), ("val", "lindau", 1)):
        for i in range(n):
            name = f"{city}_{i:06d}_000019"
            image = tu.random_image(rng, 4, 8)
            ids = rng.integers(0, 34, (4, 8)).astype(np.uint8)
            ids[0, 0] = 255  # license plate (-1) as stored in uint8
            tu.save(image, str(tmp_path / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png"))
            tu.save(ids, str(tmp_path / "gtFine" / split / city / f"{name}_gtFine_labelIds.png"))
            truth[name] = (image, cs.train_id_table()[ids])
    out = str(tmp_path / "out")
    results = cs.convert_cityscapes(str(tmp_path), out, num_shards=2)
    assert {s: r.written for s, r in results.items()} == {"train_fine": 3, "val_fine": 1}
    train = tu.read_back(out, "train_fine")
    assert list(train) == ["aachen_000000_000019", "aachen_000001_000019",
                           "bremen_000000_000019"]
    for name, got in {**train, **tu.read_back(out, "val_fine")}.items():
        assert np.array_equal(got["image"], truth[name][0])
        assert np.array_equal(got["label"], truth[name][1])
        assert set(np.unique(got["label"])) <= set(range(19)) | {255}
