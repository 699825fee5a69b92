import logging

import numpy as np
import pytest

from deeplab.data import class_weights, descriptors
from deeplab.datasets import build_data_from_list
from deeplab.datasets import testing_utils as tu


def _numpy_median_frequency(labels, num_classes, ignore):
    """Eigen & Fergus on the label arrays themselves."""
    freq = {}
    for c in range(num_classes):
        holding = [x for x in labels if (x == c).any()]
        if holding and c != ignore:
            freq[c] = sum(np.sum(x == c) for x in holding) / sum(x.size for x in holding)
    median = np.median(list(freq.values()))
    return [median / freq[c] if c in freq else 1.0 for c in range(num_classes)]


def test_auto_weights_equal_numpy_median_frequency(tmp_path, caplog):
    rng = np.random.default_rng(21)
    labels = []
    for i, (h, w) in enumerate([(6, 8), (9, 5), (7, 7), (4, 10)]):
        label = (rng.random((h, w)) ** (i + 1) * 5).astype(np.uint8)  # skewed classes
        label[0, :2] = 255
        labels.append(label)
    labels[2][labels[2] == 4] = 0  # class 4 in fewer images
    lines = []
    for i, label in enumerate(labels):
        tu.save(tu.random_image(rng, *label.shape), str(tmp_path / "img" / f"{i}.png"))
        tu.save(label, str(tmp_path / "lbl" / f"{i}.png"))
        lines.append(f"img/{i}.png lbl/{i}.png")
    (tmp_path / "l.txt").write_text("\n".join(lines))
    out = str(tmp_path / "out")
    build_data_from_list.convert_list(str(tmp_path), str(tmp_path / "l.txt"), "train", out, 6,
                                      class_names="abcdef", num_shards=2)
    descriptor = descriptors.load_descriptor(out)
    with caplog.at_level(logging.INFO):
        weights = class_weights.resolve_label_weights(["auto"], descriptor, "train")
    expected = _numpy_median_frequency(labels, 6, 255)
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    assert weights[5] == 1.0 and len({round(w, 6) for w in weights}) > 3
    assert "median frequency" in caplog.text and f"a={weights[0]:.4g}" in caplog.text
    assert class_weights.resolve_label_weights(["median_frequency"], descriptor, "train") == \
        weights


def test_numbers_and_errors():
    d = descriptors.DatasetDescriptor("d", 3, 255, {"train": 1})
    assert class_weights.resolve_label_weights(None, d, "train") is None
    assert class_weights.resolve_label_weights(["1", "0.5", 2.0], d, "train") == (1, 0.5, 2)
    with pytest.raises(ValueError, match="--label_weights: 2 weights for 3 classes"):
        class_weights.resolve_label_weights(["1", "2"], d, "train")
    with pytest.raises(ValueError, match="must be numbers"):
        class_weights.resolve_label_weights(["1", "x", "2"], d, "train")
    with pytest.raises(ValueError, match="no per-class pixel counts of split 'train'"):
        class_weights.resolve_label_weights(["auto"], d, "train")
