"""Multi-scale, flipped and sliding-window prediction against hand-built expectations."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.model.layers import resize_bilinear_align_corners
from deeplab.model.options import ModelOptions
from deeplab.model.predict import InferenceOptions, Predictor, window_starts

NUM_CLASSES = 3
STRIDE = 4
OPTIONS = ModelOptions(num_classes=NUM_CLASSES, output_stride=STRIDE * 4,
                       decoder_output_stride=STRIDE)


def tiny_model(seed=0):
    """[B, H, W, 3] -> logits [B, ceil(H/4), ceil(W/4), 3]: average pool + 1x1 conv."""
    images = keras.Input((None, None, 3))
    x = keras.layers.AveragePooling2D(STRIDE, STRIDE, padding="same")(images)
    x = keras.layers.Conv2D(NUM_CLASSES, 1, kernel_initializer=keras.initializers.RandomNormal(
        stddev=0.05, seed=seed), bias_initializer="zeros")(x)
    return keras.Model(images, x)


def np_resize(x, size):
    """Independent align-corners bilinear resize: x [B, h, w, C] -> [B, H, W, C]."""
    def axis_weights(n_in, n_out):
        pos = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo)[:, None]

    (y0, y1, wy), (x0, x1, wx) = axis_weights(x.shape[1], size[0]), axis_weights(x.shape[2],
                                                                                 size[1])
    rows = x[:, y0] * (1 - wy[None, :, :, None]) + x[:, y1] * wy[None, :, :, None]
    return rows[:, :, x0] * (1 - wx[None, None]) + rows[:, :, x1] * wx[None, None]


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def dim(d, s):
    return int((d - 1) * s + 1)


def expected_probabilities(model, image, scales, flip):
    """The original's evaluation written out step by step with numpy resizes."""
    _, h, w, _ = image.shape
    outs = []
    for s in scales:
        for flipped in (False, True) if flip else (False,):
            x = image[:, :, ::-1] if flipped else image
            if s != 1.0:
                x = np_resize(x, (dim(h, s), dim(w, s))).astype(np.float32)
            logits = model(x).numpy().astype(np.float64)
            logits = np_resize(logits, (dim(h, max(1, s) / STRIDE), dim(w, max(1, s) / STRIDE)))
            if flipped:
                logits = logits[:, :, ::-1]
            outs.append(np_softmax(np_resize(logits, (h, w))))
    return np.mean(outs, axis=0)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _image(h, w, seed=0):
    return np.random.RandomState(seed).uniform(0, 255, (1, h, w, 3)).astype(np.float32)


@pytest.mark.parametrize("scales,flip", [((1.0,), True), ((0.5, 0.75, 1.25, 1.75), False),
                                         ((0.5, 1.0, 1.5), True)])
def test_multi_scale_and_flip_match_hand_built(model, scales, flip):
    image = _image(37, 50)
    got = Predictor(model, OPTIONS, InferenceOptions(scales, flip)).probabilities(image).numpy()
    want = expected_probabilities(model, image, scales, flip)
    assert got.shape == (1, 37, 50, NUM_CLASSES)
    np.testing.assert_allclose(got, want, atol=2e-5)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)


def test_single_scale_is_upsampled_logits_exactly(model):
    image = _image(33, 41, seed=1)
    probs = Predictor(model, OPTIONS).probabilities(image).numpy()
    direct = tf.nn.softmax(resize_bilinear_align_corners(model(image), (33, 41))).numpy()
    np.testing.assert_array_equal(probs, direct)


def test_labels_are_argmax_of_probabilities(model):
    image = _image(20, 24, seed=2)
    predictor = Predictor(model, OPTIONS, InferenceOptions((0.75, 1.25), True))
    labels = predictor.labels(image).numpy()
    np.testing.assert_array_equal(labels, predictor.probabilities(image).numpy().argmax(-1))
    assert labels.dtype == np.int32


def test_sliding_window_without_overlap_equals_windows_one_by_one(model):
    image = _image(32, 48, seed=3)
    inference = InferenceOptions(window=(16, 24), window_stride=(16, 24))
    got = Predictor(model, OPTIONS, inference).probabilities(image).numpy()
    whole = Predictor(model, OPTIONS)
    for y in (0, 16):
        for x in (0, 24):
            want = whole.probabilities(image[:, y:y + 16, x:x + 24]).numpy()
            np.testing.assert_array_equal(got[:, y:y + 16, x:x + 24], want)


def test_sliding_window_overlap_averages_and_pads_small_images(model):
    image = _image(20, 30, seed=4)
    probs = Predictor(model, OPTIONS, InferenceOptions(window=(16, 16), window_stride=(8, 8))
                      ).probabilities(image).numpy()
    assert probs.shape == (1, 20, 30, NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    small = Predictor(model, OPTIONS, InferenceOptions(window=(64, 64))).probabilities(
        image).numpy()
    assert small.shape == (1, 20, 30, NUM_CLASSES)


def test_window_starts_cover_the_axis():
    assert window_starts(10, 16, 8) == [0]
    assert window_starts(32, 16, 16) == [0, 16]
    assert window_starts(40, 16, 16) == [0, 16, 24]
    assert window_starts(1024, 513, 342) == [0, 342, 511]


def test_bad_inference_options():
    with pytest.raises(ValueError, match="scales"):
        InferenceOptions(scales=())
    with pytest.raises(ValueError, match="window"):
        InferenceOptions(window=(0, 5))


def _windows_by_hand(predictor, image, window, stride):
    """Independent sliding window: full-size sums of every window's probabilities."""
    _, h, w, _ = image.shape
    total = np.zeros((1, h, w, NUM_CLASSES), np.float64)
    count = np.zeros((1, h, w, 1))
    for y in window_starts(h, window[0], stride[0]):
        for x in window_starts(w, window[1], stride[1]):
            crop = image[:, y:y + window[0], x:x + window[1]]
            total[:, y:y + window[0], x:x + window[1]] += predictor.probabilities(crop).numpy()
            count[:, y:y + window[0], x:x + window[1]] += 1
    return total / count


def test_images_beyond_max_pixels_run_as_windows_in_bounded_bands(model):
    image = _image(70, 90, seed=5)
    predictor = Predictor(model, OPTIONS, InferenceOptions(max_pixels=400))  # 20x20 windows
    seen = []
    whole_fn = predictor._whole
    predictor._whole = lambda x: seen.append(tuple(x.shape)) or whole_fn(x)
    bands = [(y, band.copy()) for y, band in predictor.bands(image)]  # views, reused
    assert set(seen) == {(1, 20, 20, 3)}  # the network never sees more than max_pixels
    assert [y for y, _ in bands] == [0, 13, 26, 39, 50]  # window_starts(70, 20, 13)
    assert max(b.shape[1] for _, b in bands) <= 20  # buffers of one row of windows
    got = np.concatenate([b for _, b in bands], axis=1)
    want = _windows_by_hand(Predictor(model, OPTIONS, InferenceOptions(max_pixels=None)),
                            image, (20, 20), (13, 13))
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_array_equal(predictor.labels(image).numpy(), got.argmax(-1))
    explicit = InferenceOptions(window=(20, 20), max_pixels=None)
    np.testing.assert_array_equal(
        Predictor(model, OPTIONS, explicit).probabilities(image).numpy(), got)


def test_images_within_max_pixels_or_covered_by_the_window_equal_whole_image(model):
    whole = Predictor(model, OPTIONS, InferenceOptions(max_pixels=None))
    image = _image(20, 25, seed=6)
    limited = Predictor(model, OPTIONS, InferenceOptions(max_pixels=500))
    np.testing.assert_array_equal(limited.probabilities(image).numpy(),
                                  whole.probabilities(image).numpy())
    # 16 x 120 beyond 900 pixels: 30-pixel windows span the whole height, clipped, not padded.
    tall = _image(16, 120, seed=7)
    got = Predictor(model, OPTIONS, InferenceOptions(max_pixels=900)).probabilities(tall)
    want = _windows_by_hand(whole, tall, (16, 30), (20, 20))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)
    with pytest.raises(ValueError, match="max_pixels"):
        InferenceOptions(max_pixels=0)


def np_nearest(x, size):
    """Independent align-corners nearest-neighbour resize of x [B, h, w] (TF's float32 scale,
    ties rounded up)."""
    def index(n_in, n_out):
        scale = np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0)
        pos = np.arange(n_out, dtype=np.float32) * scale
        return np.minimum(np.floor(pos + np.float32(0.5)).astype(int), n_in - 1)

    return x[:, index(x.shape[1], size[0])][:, :, index(x.shape[2], size[1])]


def test_labels_from_logits_at_their_stride_when_not_upsampling_logits():
    images = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(images)  # labels that vary per pixel
    x = keras.layers.AveragePooling2D(STRIDE, STRIDE, padding="same")(x)
    model = keras.Model(images, keras.layers.Conv2D(NUM_CLASSES, 1, kernel_initializer=(
        keras.initializers.RandomNormal(stddev=1.0, seed=1)))(x))
    image = _image(33, 41, seed=4)
    options = OPTIONS.replace(prediction_with_upsampled_logits=False)
    labels = Predictor(model, options).labels(image).numpy()
    want = np_nearest(model(image).numpy().argmax(-1), (33, 41))
    np.testing.assert_array_equal(labels, want)
    upsampled = Predictor(model, OPTIONS).labels(image).numpy()
    assert 0 < (labels != upsampled).mean() < 0.5  # blocky near boundaries, same elsewhere
    # Multi-scale and flipped inference upsample the logits whatever the option (original).
    inference = InferenceOptions((0.75, 1.0), True)
    np.testing.assert_array_equal(Predictor(model, options, inference).probabilities(image),
                                  Predictor(model, OPTIONS, inference).probabilities(image))
