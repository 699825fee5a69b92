"""Synchronized BatchNorm: plain BatchNorm on one replica, one-device BatchNorm on several."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.model.batch_norm import BatchNormalization

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pair(shape=(4, 5, 6, 3)):
    x = np.random.RandomState(0).normal(2.0, 3.0, shape).astype(np.float32)
    plain = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)
    sync = BatchNormalization(epsilon=1e-5, momentum=0.9)
    plain.build(shape)
    sync.build(shape)
    for layer in (plain, sync):
        layer.gamma.assign(np.linspace(0.5, 1.5, shape[-1]))
        layer.beta.assign(np.linspace(-1.0, 1.0, shape[-1]))
    return x, plain, sync


def test_is_a_keras_batch_normalization_named_as_one():
    layer = BatchNormalization()
    assert isinstance(layer, keras.layers.BatchNormalization)
    assert type(layer).__name__ == "BatchNormalization"
    assert layer.synchronized
    assert BatchNormalization.from_config(layer.get_config()).synchronized


@pytest.mark.parametrize("shape", [(4, 5, 6, 3), (4, 7, 32)])
def test_one_replica_matches_plain_batch_norm_forward_and_gradients(shape):
    """One replica runs the fused kernel: Keras' output, gradients and moving mean up to
    float rounding; the moving variance averages the Bessel-corrected batch variance (as
    the original's TF1 fused BatchNorm), where Keras averages the population one."""
    x, plain, sync = _pair(shape)
    x = tf.constant(x)
    upstream = tf.constant(np.random.RandomState(1).normal(size=x.shape).astype(np.float32))
    results = []
    for layer in (plain, sync):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
        results.append([y, *grads, layer.moving_mean])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-5)
    flat = x.numpy().reshape(-1, shape[-1])
    np.testing.assert_allclose(sync.moving_variance.numpy(),
                               0.9 + 0.1 * flat.var(axis=0, ddof=1), rtol=1e-5)
    assert not np.allclose(plain.moving_variance.numpy(), sync.moving_variance.numpy(),
                           rtol=1e-4)


@pytest.mark.parametrize("channels", [32, 24])  # fused in bfloat16 / through float32
def test_bfloat16_training_stays_bfloat16_with_float32_statistics(channels):
    shape = (2, 6, 6, channels)
    x = np.random.RandomState(0).normal(2.0, 3.0, shape).astype(np.float32)
    layer = BatchNormalization(epsilon=1e-5, momentum=0.5, dtype="mixed_bfloat16")
    y = layer(tf.cast(x, tf.bfloat16), training=True)
    assert y.dtype == tf.bfloat16
    assert layer.moving_mean.dtype == "float32"
    rounded = tf.cast(tf.cast(x, tf.bfloat16), tf.float32).numpy()
    mean, variance = rounded.mean(axis=(0, 1, 2)), rounded.var(axis=(0, 1, 2))
    bessel = variance * 72 / 71  # 2 x 6 x 6 values per channel
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.5 + 0.5 * bessel, rtol=1e-5)
    expected = (rounded - mean) / np.sqrt(variance + 1e-5)
    np.testing.assert_allclose(tf.cast(y, tf.float32).numpy(), expected, atol=0.03)


@pytest.mark.parametrize("channels", [32, 24])  # fused in bfloat16 / through float32
def test_bfloat16_gradients_match_float32_on_the_rounded_input(channels):
    """The backward pass casts the bfloat16 input again (it keeps no float32 copy from the
    forward pass): its gradients are float32's on the same rounded input, to bf16 precision."""
    shape = (2, 6, 6, channels)
    rng = np.random.RandomState(0)
    x = tf.cast(rng.normal(2.0, 3.0, shape).astype(np.float32), tf.bfloat16)
    upstream = rng.normal(size=shape).astype(np.float32)
    grads = {}
    for policy, layer in (
            ("float32", keras.layers.BatchNormalization(epsilon=1e-5)),  # Keras' own graph
            ("mixed_bfloat16", BatchNormalization(epsilon=1e-5, dtype="mixed_bfloat16"))):
        inputs = tf.cast(x, layer.compute_dtype)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = layer(inputs, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
        dx, dgamma, dbeta = tape.gradient(loss, [inputs, layer.gamma.value, layer.beta.value])
        assert dx.dtype == inputs.dtype
        grads[policy] = [tf.cast(g, tf.float32).numpy() for g in (dx, dgamma, dbeta)]
    for ours, reference in zip(grads["mixed_bfloat16"], grads["float32"], strict=True):
        scale = np.abs(reference).max()
        np.testing.assert_allclose(ours, reference, atol=0.02 * scale)


def test_one_replica_inside_a_strategy_and_tf_function():
    x, plain, sync = _pair()
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")

    @tf.function
    def step(layer):
        def replica(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x, training=True) * upstream)
            return tape.gradient(loss, x)

        return strategy.run(replica, args=(tf.constant(x),))

    # sum(y^2) would have a zero gradient; random weights give one of size ~1.
    upstream = tf.constant(np.random.RandomState(1).normal(size=x.shape).astype(np.float32))
    expected = step(plain).numpy()
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(step(sync).numpy(), expected, rtol=1e-5, atol=1e-5)


# Two logical CPUs must be configured before TensorFlow starts: a fresh interpreter.
_TWO_REPLICAS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from deeplab.model.batch_norm import BatchNormalization

    def net():
        keras.utils.set_random_seed(1)
        inputs = keras.Input((6, 6, 3))
        x = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
        x = BatchNormalization(epsilon=1e-5, momentum=0.5)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.DepthwiseConv2D(3, use_bias=False)(x)
        x = BatchNormalization(epsilon=1e-5, momentum=0.5)(x)
        x = keras.layers.Conv2D(2, 1, use_bias=False)(x)
        x = BatchNormalization(epsilon=1e-5, momentum=0.5)(x)
        return keras.Model(inputs, x)

    rng = np.random.RandomState(0)
    images = rng.normal(1.0, 2.0, (8, 6, 6, 3)).astype(np.float32)
    targets = rng.normal(size=(8, 2, 2, 2)).astype(np.float32)

    def run(strategy):
        with strategy.scope():
            model = net()
        data = tf.data.Dataset.from_tensor_slices((images, targets)).batch(8)
        batch = next(iter(strategy.experimental_distribute_dataset(data)))

        @tf.function
        def step(batch):
            def replica(x, t):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(tf.square(model(x, training=True) - t) * t) / 8.0
                return tape.gradient(loss, model.trainable_variables)
            grads = strategy.run(replica, args=batch)
            return [strategy.reduce("sum", g, axis=None) for g in grads]

        grads = step(batch)
        stats = [v for v in model.non_trainable_variables]
        return [g.numpy().tolist() for g in grads], [np.asarray(v).tolist() for v in stats]

    one = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
    two = run(tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()))
    json.dump({"one": one, "two": two}, sys.stdout)
""")


@pytest.mark.slow
def test_two_replicas_match_one_device():
    done = subprocess.run([sys.executable, "-c", _TWO_REPLICAS], cwd=REPO, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    (grads1, stats1), (grads2, stats2) = result["one"], result["two"]
    assert len(grads1) == len(grads2) == 9  # 3 kernels, 3 gammas, 3 betas
    scale = max(np.abs(g).max() for g in grads1)
    assert scale > 1e-2
    for a, b in zip(grads1, grads2, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * scale)
    for a, b in zip(stats1, stats2, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_half_precision_inference_folds_statistics_and_matches_float32():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (2, 5, 5, 4)).astype(np.float32)
    layer = BatchNormalization(epsilon=1e-3, synchronized=False, dtype="mixed_bfloat16")
    layer.build(x.shape)
    layer.moving_mean.assign(rng.normal(size=4).astype(np.float32))
    layer.moving_variance.assign(rng.uniform(0.5, 2.0, 4).astype(np.float32))
    layer.gamma.assign(rng.uniform(0.5, 1.5, 4).astype(np.float32))
    layer.beta.assign(rng.normal(size=4).astype(np.float32))
    out = layer(tf.cast(x, tf.bfloat16), training=False)
    assert out.dtype == tf.bfloat16
    mm, mv = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    want = (x - mm) / np.sqrt(mv + 1e-3) * layer.gamma.numpy() + layer.beta.numpy()
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(), want, rtol=2e-2, atol=5e-2)


def test_frozen_statistics_normalise_with_the_moving_ones_and_train_gamma_beta():
    """fine_tune_batch_norm=False as the original: a training call uses and keeps the moving
    statistics, while gamma and beta get their gradients (Keras' trainable=False would
    freeze them too)."""
    x, _, layer = _pair()
    layer.moving_mean.assign([0.5, -1.0, 2.0])
    layer.moving_variance.assign([2.0, 0.5, 4.0])
    layer.frozen_statistics = True
    assert len(layer.trainable_variables) == 2
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * tf.range(3, dtype=tf.float32))
    dgamma, dbeta = tape.gradient(loss, [layer.gamma.value, layer.beta.value])
    normalised = (x.numpy() - [0.5, -1.0, 2.0]) / np.sqrt(np.array([2.0, 0.5, 4.0]) + 1e-5)
    np.testing.assert_allclose(y.numpy(), normalised * layer.gamma.numpy() + layer.beta.numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), [0.5, -1.0, 2.0])
    np.testing.assert_allclose(layer.moving_variance.numpy(), [2.0, 0.5, 4.0])
    np.testing.assert_allclose(dbeta.numpy(), np.arange(3) * x.shape[0] * 5 * 6, rtol=1e-6)
    np.testing.assert_allclose(dgamma.numpy(), (normalised * np.arange(3)).sum(axis=(0, 1, 2)),
                               rtol=1e-4, atol=1e-3)
    assert BatchNormalization.from_config(layer.get_config()).frozen_statistics
