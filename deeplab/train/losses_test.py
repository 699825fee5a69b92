"""The training loss against an independent numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from deeplab.train import losses

C = 4


def np_ce(logits, labels):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, labels[..., None], -1)[..., 0]


@pytest.fixture
def batch():
    rng = np.random.RandomState(0)
    logits = rng.normal(size=(2, 6, 5, C)).astype(np.float32)
    labels = rng.randint(0, C, size=(2, 6, 5, 1)).astype(np.int32)
    labels[0, :2, :, 0] = 255
    return logits, labels


def test_mean_over_counted_pixels(batch):
    logits, labels = batch
    per_pixel, count = losses.pixel_losses(logits, labels, C, 255)
    valid = labels[..., 0] != 255
    want = np_ce(logits, np.where(valid, labels[..., 0], 0))[valid].mean()
    assert float(count) == valid.sum()
    assert float(losses.replica_loss(per_pixel, count)) == pytest.approx(want, rel=1e-5)


def test_label_weights_and_split_across_replicas(batch):
    logits, labels = batch
    weights = (1.0, 2.0, 0.5, 3.0)
    per_pixel, count = losses.pixel_losses(logits, labels, C, 255, label_weights=weights)
    lab = labels[..., 0]
    valid = lab != 255
    ce = np_ce(logits, np.where(valid, lab, 0)) * np.where(valid, np.take(weights, np.where(
        valid, lab, 0)), 0)
    assert float(losses.replica_loss(per_pixel, count)) == pytest.approx(
        ce.sum() / valid.sum(), rel=1e-5)
    # Two replicas holding one image each sum to the same global mean.
    halves = [losses.pixel_losses(logits[i:i + 1], labels[i:i + 1], C, 255, label_weights=weights)
              for i in range(2)]
    total = sum(float(losses.replica_loss(p, count)) for p, _ in halves)
    assert total == pytest.approx(ce.sum() / valid.sum(), rel=1e-5)


def test_hard_example_mining_keeps_the_largest_losses(batch):
    logits, labels = batch
    per_pixel, _ = losses.pixel_losses(logits, labels, C, 255)
    values = np.sort(per_pixel.numpy())[::-1]
    k = int(values.size * 0.25)
    assert float(losses.replica_loss(per_pixel, None, top_k=0.25)) == pytest.approx(
        values[:k].mean(), rel=1e-5)
    assert float(losses.top_k_ratio(0, 0.25, 100)) == pytest.approx(1.0)
    assert float(losses.top_k_ratio(50, 0.25, 100)) == pytest.approx(0.625)
    assert float(losses.top_k_ratio(500, 0.25, 100)) == pytest.approx(0.25)


def test_downsampled_labels_when_logits_are_not_upsampled():
    labels = np.arange(9 * 9, dtype=np.int32).reshape(1, 9, 9, 1) % C
    logits = np.zeros((1, 3, 3, C), np.float32)
    _, small = losses.match_sizes(logits, labels, upsample_logits=False)
    np.testing.assert_array_equal(small.numpy()[0, :, :, 0], labels[0, ::4, ::4, 0])


def test_weight_decay_counts_conv_kernels_only():
    import keras

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, use_bias=True)(inp)
    x = keras.layers.DepthwiseConv2D(3)(x)
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inp, x)
    kernel = model.layers[1].kernel.numpy()
    assert float(losses.weight_decay_loss(model, 0.1)) == pytest.approx(
        0.1 * (kernel ** 2).sum() / 2, rel=1e-5)
    assert float(losses.weight_decay_loss(model, 0.0)) == 0.0
    assert tf.is_tensor(losses.weight_decay_loss(model, 0.0))
