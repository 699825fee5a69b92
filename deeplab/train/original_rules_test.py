"""The original train.py's rules one by one, on tiny networks: gradient multipliers, the last
layers (DPC included), TF1 momentum, loss normalisers, initial values, the image pyramid,
the profiler window and the TF1 cluster flags."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from deeplab.checkpoints.io import last_layer_scopes, restore_model, variable_map
from deeplab.data.pipeline import InputOptions
from deeplab.model.deeplab import build_model
from deeplab.model.layers import resize_bilinear_align_corners
from deeplab.model.options import ModelOptions
from deeplab.model.pyramid import scaled_size
from deeplab.train import losses
from deeplab.train.flags import check_cluster_flags, define_train_flags
from deeplab.train.optimizers import TF1Momentum, make_optimizer
from deeplab.train.options import TrainOptions
from deeplab.train.trainer import DataOptions, Trainer, gradient_multipliers

TINY = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.25, num_classes=4,
                    aspp_convs_filters=8, decoder_filters=8, decoder_output_stride=4)
DPC = [{"kernel": 3, "rate": [1, 6], "op": "conv", "input": -1},
       {"kernel": 3, "rate": [1, 1], "op": "conv", "input": 0}]


def _options(logdir="unused", **kwargs):
    return TrainOptions(train_logdir=str(logdir), **kwargs)


def test_biases_get_twice_the_gradient_and_last_layers_match_by_substring():
    """train_utils.get_model_gradient_multipliers: every `biases` x2 (with or without a last
    layer multiplier), last-layer scopes matched anywhere in the name, DPC included."""
    model = build_model(TINY.replace(dense_prediction_cell_config=DPC,
                                     image_pooling_crop_size=(33, 33)))
    names = [n for n, v in variable_map(model).items() if v.trainable]
    plain = dict(zip(names, gradient_multipliers(model, _options()), strict=True))
    assert plain["logits/semantic/biases"] == 2.0
    assert plain["logits/semantic/weights"] == 1.0
    assert all(m == (2.0 if "biases" in n else 1.0) for n, m in plain.items())
    tenfold = dict(zip(names, gradient_multipliers(model, _options(
        last_layer_gradient_multiplier=10.0)), strict=True))
    dpc = [n for n in names if n.startswith("meta_architecture/")]
    assert dpc and all(tenfold[n] == 10.0 for n in dpc)
    assert tenfold["logits/semantic/biases"] == 20.0
    assert tenfold["decoder/feature_projection0/weights"] == 10.0
    assert tenfold["MobilenetV2/Conv/weights"] == 1.0
    off = gradient_multipliers(model, _options(bias_gradient_multiplier=1.0))
    assert set(off) == {1.0}


def test_initialize_last_layer_false_leaves_the_dpc_out(tmp_path):
    options = TINY.replace(dense_prediction_cell_config=DPC, image_pooling_crop_size=(33, 33))
    source, target = build_model(options), build_model(options)
    prefix = tf.train.Checkpoint(model={n: v.value for n, v in
                                        variable_map(source).items()}).write(
        str(tmp_path / "ckpt"))
    report = restore_model(target, prefix, exclude_scopes=last_layer_scopes(False))
    assert any(n.startswith("meta_architecture/") for n in report.excluded)
    assert not any(n.startswith("meta_architecture/") for n in report.loaded)
    logits_only = restore_model(target, prefix, exclude_scopes=last_layer_scopes(True))
    assert sorted(logits_only.excluded) == ["logits/semantic/biases", "logits/semantic/weights"]


class _Rates(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, rates):
        self.rates = rates

    def __call__(self, step):
        return tf.gather(tf.constant(self.rates), step)


def test_tf1_momentum_applies_the_accumulator_at_the_current_rate():
    """a = m a + g; w -= lr_k a: with a rate that changes, not Keras' v = m v - lr g."""
    rates = [0.1, 0.05, 0.02]
    grads = [np.array([1.0, -2.0], np.float32), np.array([0.5, 0.5], np.float32),
             np.array([-1.0, 3.0], np.float32)]
    results = {}
    for name, optimizer in (("tf1", TF1Momentum(_Rates(rates), momentum=0.9)),
                            ("keras", keras.optimizers.SGD(_Rates(rates), momentum=0.9))):
        var = tf.Variable([1.0, 1.0])
        for g in grads:
            optimizer.apply([tf.constant(g)], [var])
        results[name] = var.numpy()
    a, w = np.zeros(2, np.float32), np.ones(2, np.float32)
    for lr, g in zip(rates, grads, strict=True):
        a = np.float32(0.9) * a + g
        w = w - np.float32(lr) * a
    np.testing.assert_allclose(results["tf1"], w, rtol=1e-6)
    assert not np.allclose(results["keras"], w, rtol=1e-3)
    assert isinstance(make_optimizer(_options()), TF1Momentum)
    assert type(make_optimizer(_options(momentum_update="keras"))) is keras.optimizers.SGD


def test_a_zero_weight_class_still_counts_in_the_normaliser():
    """The original divides the weighted sum by the non-ignored pixels, whatever weights."""
    logits = tf.constant(np.random.default_rng(0).normal(size=(1, 2, 2, 3)), tf.float32)
    labels = tf.constant([[[[0], [1]], [[2], [255]]]], tf.int32)
    per_pixel, count = losses.pixel_losses(logits, labels, 3, 255, label_weights=(1.0, 0.0, 1.0))
    assert float(count) == 3.0
    flat = tf.reshape(logits, [-1, 3]).numpy()
    ce = [-np.log(np.exp(flat[i][c]) / np.exp(flat[i]).sum()) for i, c in ((0, 0), (2, 2))]
    assert float(losses.replica_loss(per_pixel, count)) == pytest.approx(sum(ce) / 3, rel=1e-5)


def test_hard_example_mining_divides_by_the_non_zero_losses_kept():
    """Top k of [3, 2, 0 (ignored), 0 (ignored)] with k = 3 is 5 / 2 (not 5 / 3)."""
    per_pixel = tf.constant([0.0, 3.0, 0.0, 2.0])
    assert float(losses.replica_loss(per_pixel, None, top_k=0.75)) == pytest.approx(2.5)
    assert float(losses.replica_loss(tf.zeros([4]), None, top_k=0.5)) == 0.0
    # the ramp: ratio * top_k + (1 - ratio), pixels int(fraction * N)
    assert float(losses.top_k_ratio(50, 0.2, 100)) == pytest.approx(0.6)


def test_new_layers_start_as_the_original_draws_them():
    """Logits: truncated normal of stddev 0.01 (std 0.0088 after the 2-sigma cut), zero
    biases; the head's split separable convs: 0.33 / 0.06."""
    model = build_model(ModelOptions(model_variant="mobilenet_v2", num_classes=200,
                                     atrous_rates=(6,), aspp_convs_filters=256))
    weights = variable_map(model)
    logits = weights["logits/semantic/weights"].numpy()
    assert 0.0083 < logits.std() < 0.0093 and np.abs(logits).max() <= 0.02
    assert not weights["logits/semantic/biases"].numpy().any()
    depthwise = weights["aspp1_depthwise/depthwise_weights"].numpy()
    pointwise = weights["aspp1_pointwise/weights"].numpy()
    assert np.abs(depthwise).max() <= 0.66 and 0.25 < depthwise.std() < 0.32
    assert np.abs(pointwise).max() <= 0.12 and 0.048 < pointwise.std() < 0.058


def _pyramid_trainer(tmp_path, pyramid):
    data = DataOptions("tiny", str(tmp_path), "train", 4, 255, InputOptions(crop_size=(33, 33)))
    options = _options(tmp_path / "run", image_pyramid=pyramid, train_batch_size=2,
                       base_learning_rate=0.01)
    trainer = Trainer(TINY, options, data, tf.distribute.OneDeviceStrategy("/cpu:0"))
    rng = np.random.default_rng(3)
    batch = {"image": rng.uniform(0, 255, (2, 33, 33, 3)).astype(np.float32),
             "label": rng.integers(0, 4, (2, 33, 33, 1)).astype(np.int32)}
    iterator = iter(trainer.strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).repeat()))
    return trainer, batch, iterator


def test_image_pyramid_has_a_loss_per_scale_and_updates_batch_norm_once_per_scale(tmp_path):
    trainer, batch, iterator = _pyramid_trainer(tmp_path, (0.5, 1.0))
    bn = trainer.model.get_layer("MobilenetV2.Conv.BatchNorm")
    conv = tf.keras.Model(trainer.model.input, bn.input)  # before any BatchNorm: no state
    decay = np.float32(bn.momentum)
    means = []
    for scale in (0.5, 1.0):
        size = scaled_size((33, 33), scale)
        images = resize_bilinear_align_corners(tf.constant(batch["image"]), size)
        means.append(conv(images, training=True).numpy().mean(axis=(0, 1, 2)))
    values = trainer.make_step_fn()(iterator)
    assert {"cross_entropy", "cross_entropy_logits_0.50", "cross_entropy_logits_1.00",
            "weight_decay"} <= set(values)
    terms = sum(float(v) for k, v in values.items() if k.startswith(("cross", "weight")))
    assert float(values["total_loss"]) == pytest.approx(terms, rel=1e-5)
    expected = np.zeros_like(means[0])
    for mean in means:  # two updates, in pyramid order
        expected = expected - (expected - mean) * (np.float32(1) - decay)
    np.testing.assert_allclose(bn.moving_mean.numpy(), expected, rtol=1e-4, atol=1e-7)


def test_one_scale_is_the_plain_step(tmp_path):
    trainer, _, iterator = _pyramid_trainer(tmp_path, (1.0,))
    values = trainer.make_step_fn()(iterator)
    assert set(values) == {"total_loss", "cross_entropy", "weight_decay", "gradient_norm"}


def test_profile_logdir_profiles_steps_after_warm_up(tmp_path):
    trainer, _, iterator = _pyramid_trainer(tmp_path, None)
    from deeplab.train.summaries import ProfileWindow

    window = ProfileWindow(str(tmp_path / "profile"), trainer.step, warmup=1, steps=1)
    step_fn = trainer.make_step_fn()
    for _ in range(3):
        window.before_step(trainer.step)
        step_fn(iterator)
        window.after_step(trainer.step)
    assert not window.active
    assert list((tmp_path / "profile").rglob("*.xplane.pb"))


@pytest.mark.parametrize("flag,hint", [("--master=grpc://x:1", "TF_CONFIG"),
                                       ("--num_ps_tasks=2", "parameter servers"),
                                       ("--clone_on_cpu", "--num_clones")])
def test_tf1_cluster_flags_say_what_replaces_them(flag, hint):
    fv = flags.FlagValues()
    define_train_flags(fv)
    fv(["train.py", flag])
    with pytest.raises(flags.ValidationError, match=f"TF1 cluster flag.*{hint}"):
        check_cluster_flags(fv)


def test_divisible_by_rounds_mobilenet_v2_channels():
    base = build_model(TINY)
    rounded = build_model(TINY.replace(divisible_by=8))
    assert base.get_layer("MobilenetV2.Conv").filters == 8  # 32 * 0.25, divisor 1
    assert rounded.get_layer("MobilenetV2.expanded_conv.project").filters == 8  # 16 * .25 -> 8
    assert base.get_layer("MobilenetV2.expanded_conv.project").filters == 4
    with pytest.raises(ValueError, match="mobilenet_v2"):
        ModelOptions(model_variant="xception_65", divisible_by=8)
