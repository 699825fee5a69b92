import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from deeplab.data import augment
from deeplab.data.pipeline import InputOptions

COLOURS = np.array([[10, 200, 30], [250, 0, 90], [40, 40, 240], [128, 255, 0]], np.float32)


def _blocks(height=40, width=56, block=8, seed=0):
    """Label of random 8x8 blocks (classes 0..3) and image = COLOURS[label]."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 4, (height // block + 1, width // block + 1))
    label = np.kron(coarse, np.ones((block, block), int))[:height, :width].astype(np.uint8)
    return COLOURS[label].astype(np.uint8), label[..., None]


def _train(image, label, options, seed):
    out = augment.preprocess_for_train(tf.constant(image), tf.constant(label), options,
                                       tf.constant(seed, tf.int64))
    return [t.numpy() for t in out]


OPTIONS = InputOptions(crop_size=(33, 45), ignore_label=255)


@pytest.mark.parametrize("seed", [(0, 0), (0, 1), (3, 7), (5, 2), (9, 9), (1, 4)])
def test_label_values_shapes_and_alignment_survive_scale_crop_flip(seed):
    image, label = _blocks()
    out_image, out_label, size = _train(image, label, OPTIONS, seed)
    assert out_image.shape == (33, 45, 3) and out_image.dtype == np.float32
    assert out_label.shape == (33, 45, 1) and out_label.dtype == np.int32
    assert tuple(size) == (40, 56)
    assert set(np.unique(out_label)) <= set(np.unique(label)) | {255}
    lab = out_label[..., 0]
    # Where the label is uniform over a 5x5 neighbourhood, the image is exactly its colour.
    interior = (ndimage.maximum_filter(lab, 5) == ndimage.minimum_filter(lab, 5)) & (lab != 255)
    interior[:2] = interior[-2:] = interior[:, :2] = interior[:, -2:] = False  # crop edges
    assert interior.sum() > 100
    np.testing.assert_allclose(out_image[interior], COLOURS[lab[interior]], atol=1e-3)
    # Padding: every ignore pixel (the source has none) shows the mean pixel.
    np.testing.assert_array_equal(out_image[lab == 255], 127.5)


def test_flip_and_crop_keep_pairs_aligned_without_scaling():
    image, label = _blocks(seed=1)
    options = InputOptions(crop_size=(40, 56), min_scale_factor=1.0, max_scale_factor=1.0)
    flips = 0
    for i in range(12):
        out_image, out_label, _ = _train(image, label, options, (i, 0))
        flipped = np.array_equal(out_label, label[:, ::-1])
        assert flipped or np.array_equal(out_label, label)
        np.testing.assert_array_equal(out_image, COLOURS[out_label[..., 0]])
        flips += flipped
    assert 0 < flips < 12


def test_deterministic_under_seed():
    image, label = _blocks(seed=2)
    a = _train(image, label, OPTIONS, (4, 2))
    b = _train(image, label, OPTIONS, (4, 2))
    c = _train(image, label, OPTIONS, (4, 3))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1]) or not np.array_equal(a[0], c[0])


def test_random_scale_takes_every_step_and_nothing_else():
    values = {round(float(augment.random_scale(tf.constant([i, 0]), 0.5, 2.0, 0.25)), 4)
              for i in range(200)}
    assert values == {0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0}
    assert float(augment.random_scale(tf.constant([1, 1]), 1.5, 1.5, 0.25)) == 1.5
    uniform = float(augment.random_scale(tf.constant([1, 2]), 0.5, 2.0, 0))
    assert 0.5 <= uniform < 2.0
    with pytest.raises(ValueError, match="min_scale_factor"):
        augment.random_scale(tf.constant([0, 0]), 2.0, 1.0, 0.25)


def test_scale_sizes_follow_int_of_size_times_scale():
    image = tf.zeros([40, 56, 3])
    label = tf.zeros([40, 56, 1], tf.int32)
    scaled, scaled_label = augment.scale_pair(image, label, tf.constant(0.75))
    assert scaled.shape == (30, 42, 3) and scaled_label.shape == (30, 42, 1)
    scaled, _ = augment.scale_pair(image, label, tf.constant(1.25))
    assert scaled.shape == (50, 70, 3)


def test_resize_to_range_sizes():
    image = tf.zeros([100, 200, 3])
    size = lambda *a, **k: tuple(augment.resize_to_range(image, None, *a, **k)[0].shape[:2])
    assert size(50) == (50, 100)
    assert size(50, 80) == (40, 80)
    assert size(50, factor=8) == (57, 105)
    assert size(50, keep_aspect_ratio=False) == (100, 100)


def test_pad_keeps_values_exactly_with_non_round_mean():
    image = tf.constant(np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3))
    mean = (123.15, 115.90, 103.06)
    padded = augment.pad_to_size(image, 4, 5, mean).numpy()
    assert padded.shape == (4, 5, 3)
    np.testing.assert_array_equal(padded[:2, :3], image.numpy())
    np.testing.assert_array_equal(padded[3, 4], np.float32(mean))
    label = augment.pad_to_size(tf.ones([2, 3, 1], tf.int32), 4, 5, 255).numpy()
    assert label[:2, :3].min() == 1 and (label[2:] == 255).all() and (label[:, 3:] == 255).all()


def test_eval_pads_bottom_right_and_rejects_larger_images():
    image, label = _blocks(20, 30)
    options = InputOptions(crop_size=(25, 33))
    out_image, out_label, size = [t.numpy() for t in augment.preprocess_for_eval(
        tf.constant(image), tf.constant(label), options, tf.constant("img_7"))]
    assert out_image.shape == (25, 33, 3) and tuple(size) == (20, 30)
    np.testing.assert_array_equal(out_image[:20, :30], image)
    np.testing.assert_array_equal(out_label[:20, :30], label)
    assert (out_label[20:] == 255).all() and (out_image[:, 30:] == 127.5).all()
    small = InputOptions(crop_size=(19, 40))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image \"img_7\" is 20x30 \(HxW\), larger than the eval crop 19x40"):
        augment.preprocess_for_eval(tf.constant(image), tf.constant(label), small,
                                    tf.constant("img_7"))
    whole = InputOptions(crop_size=None, min_resize_value=10, max_resize_value=15)
    resized, _, size = augment.preprocess_for_eval(tf.constant(image), tf.constant(label),
                                                   whole, tf.constant("x"))
    assert resized.shape == (10, 15, 3) and tuple(size.numpy()) == (10, 15)
