import os

import numpy as np
from scipy import ndimage

from deeplab.data import descriptors
from deeplab.datasets import synthetic
from deeplab.datasets import testing_utils as tu


def test_examples_are_deterministic_and_well_formed():
    image, label = synthetic.generate_example(3, "train", (64, 80), seed=1)
    again, again_label = synthetic.generate_example(3, "train", (64, 80), seed=1)
    other, _ = synthetic.generate_example(3, "val", (64, 80), seed=1)
    np.testing.assert_array_equal(image, again)
    np.testing.assert_array_equal(label, again_label)
    assert not np.array_equal(image, other)
    assert image.shape == (64, 80, 3) and image.dtype == np.uint8 and label.shape == (64, 80)
    assert set(np.unique(label)) <= set(range(6)) | {255}


def test_ignore_band_separates_every_pair_of_classes():
    classes = set()
    band_pixels = thick_pixels = 0
    for index in range(20):
        _, label = synthetic.generate_example(index, "train")
        classes |= set(np.unique(label).tolist())
        valid = np.where(label == 255, -1, label.astype(int))
        # No two different valid labels touch (4-neighbourhood): a boundary is always ignore.
        for a, b in ((valid[1:], valid[:-1]), (valid[:, 1:], valid[:, :-1])):
            assert not ((a != b) & (a >= 0) & (b >= 0)).any()
        band = label == 255
        assert band.sum() < 0.25 * label.size
        band_pixels += band.sum()
        thick_pixels += ndimage.binary_erosion(band, np.ones((3, 3))).sum()
    assert thick_pixels <= 0.03 * band_pixels  # about 2 pixels wide (wider only at slivers)
    assert classes == set(range(6)) | {255}


def test_classes_differ_in_mean_colour():
    sums = np.zeros((6, 3))
    counts = np.zeros(6)
    for index in range(40):
        image, label = synthetic.generate_example(index, "train")
        for c in range(6):
            sums[c] += image[label == c].sum(0)
            counts[c] += (label == c).sum()
    means = sums / counts[:, None]
    distances = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert distances[~np.eye(6, dtype=bool)].min() > 30


def test_write_and_ensure(tmp_path):
    directory = str(tmp_path / "syn")
    kwargs = dict(num_train=6, num_val=3, image_size=(16, 20), seed=2)
    path, desc = synthetic.ensure_synthetic_dataset(directory, **kwargs)
    assert path == directory and desc.splits == {"train": 6, "val": 3}
    assert descriptors.load_descriptor(directory) == desc
    assert desc.class_names == descriptors.get_descriptor("synthetic").class_names
    shard = os.path.join(directory, "val-00000-of-00002.tfrecord")
    stamp = os.stat(shard).st_mtime_ns
    synthetic.ensure_synthetic_dataset(directory, **kwargs)
    assert os.stat(shard).st_mtime_ns == stamp  # reused, not regenerated
    back = tu.read_back(directory, "val")
    image, label = synthetic.generate_example(1, "val", (16, 20), seed=2)
    np.testing.assert_array_equal(back["val_00001"]["image"], image)
    np.testing.assert_array_equal(back["val_00001"]["label"], label)
    _, desc = synthetic.ensure_synthetic_dataset(directory, num_train=4, num_val=3,
                                                 image_size=(16, 20), seed=2)
    assert desc.splits == {"train": 4, "val": 3}
