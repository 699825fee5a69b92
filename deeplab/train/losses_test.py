"""The training loss against an independent numpy computation."""

from __future__ import annotations

import dataclasses

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


def test_registry_picks_losses_by_name_and_refuses_unknown_ones(batch):
    logits, labels = batch
    spec = losses.LossSpec(C, 255)
    terms = losses.get_loss("softmax_cross_entropy")()(logits, labels, spec)
    assert list(terms) == ["cross_entropy"]
    per_pixel, count = terms["cross_entropy"]
    expected, expected_count = losses.pixel_losses(logits, labels, C, 255)
    np.testing.assert_array_equal(per_pixel.numpy(), expected.numpy())
    assert float(count) == float(expected_count)
    with pytest.raises(ValueError, match="unknown loss 'focal'.*softmax_cross_entropy"):
        losses.get_loss("focal")


def test_nas_separable_convolutions_are_weight_decayed_on_both_kernels():
    """The original's NAS arg scope regularises slim.separable_conv2d: both its kernels."""
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.SeparableConv2D(4, 3, name="cell")(inputs)
    x = keras.layers.Conv2D(2, 1, name="logits")(x)
    model = keras.Model(inputs, x)
    decayed = losses.weight_decayed_variables(model)
    assert [v.path for v in decayed] == ["cell/depthwise_kernel", "cell/pointwise_kernel",
                                         "logits/kernel"]
    want = 0.5 * sum(float((v.numpy() ** 2).sum()) for v in decayed)
    assert float(losses.weight_decay_loss(model, 1.0)) == pytest.approx(want, rel=1e-5)


def test_build_losses_configures_each_loss_and_names_mistakes():
    built = losses.build_losses("softmax_cross_entropy:1,dice:0.5,lovasz_softmax:0.25",
                                ("dice.smooth=0.1", "lovasz_softmax.per_image=true"))
    assert [(b.name, b.weight) for b in built] == [
        ("softmax_cross_entropy", 1.0), ("dice", 0.5), ("lovasz_softmax", 0.25)]
    assert built[1].loss.smooth == 0.1 and built[2].loss.per_image is True
    with pytest.raises(ValueError, match="no option 'eps'; its options: smooth, classes"):
        losses.build_losses("dice", ("dice.eps=1",))
    with pytest.raises(ValueError, match="dice.smooth='a': expected a float"):
        losses.build_losses("dice", ("dice.smooth=a",))
    with pytest.raises(ValueError, match="lovasz_softmax.per_image='maybe': expected a bool"):
        losses.build_losses("lovasz_softmax", ("lovasz_softmax.per_image=maybe",))
    with pytest.raises(ValueError, match="--loss_options for dice, which --loss="):
        losses.build_losses("softmax_cross_entropy", ("dice.smooth=1",))


def test_weighted_terms_scale_each_loss(batch):
    logits, labels = batch
    spec = losses.LossSpec(C, 255)
    one = losses.weighted_terms(losses.build_losses("softmax_cross_entropy,dice"),
                                logits, labels, spec)
    weighted = losses.weighted_terms(losses.build_losses("softmax_cross_entropy:2,dice:0.5"),
                                     logits, labels, spec, suffix="_s")
    assert set(weighted) == {"cross_entropy_s", "dice_s"}
    assert float(weighted["cross_entropy_s"]) == pytest.approx(2 * float(one["cross_entropy"]))
    assert float(weighted["dice_s"]) == pytest.approx(0.5 * float(one["dice"]))
    halves = losses.weighted_terms(losses.build_losses("dice"), logits, labels, spec,
                                   num_replicas=2)
    assert float(halves["dice"]) == pytest.approx(0.5 * float(one["dice"]))


def test_registered_losses_train_with_their_weighted_terms(monkeypatch, tmp_path):
    """The quick start's setting (synthetic data, MobileNetV2) with a weighted sum of a
    loss registered by a test (one class plus one entry), Dice and Lovasz: every term is
    reported, the total is their sum, and they go down."""
    from deeplab.data.pipeline import InputOptions
    from deeplab.datasets.synthetic import write_synthetic_dataset
    from deeplab.model.options import ModelOptions
    from deeplab.train.options import TrainOptions
    from deeplab.train.trainer import DataOptions, Trainer

    @dataclasses.dataclass(frozen=True)
    class Doubled:
        def __call__(self, logits, labels, spec):
            ce = losses.SoftmaxCrossEntropy()(logits, labels, spec)["cross_entropy"]
            return {"cross_entropy": ce, "doubled": (2.0 * ce[0], ce[1])}

    monkeypatch.setitem(losses.LOSSES, "doubled", Doubled)
    folder = str(tmp_path / "data")
    descriptor = write_synthetic_dataset(folder, num_train=2, num_val=1, image_size=(33, 33))
    data = DataOptions("synthetic", folder, "train", descriptor.num_classes,
                       descriptor.ignore_label, InputOptions(crop_size=(33, 33)))
    model = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.5,
                         num_classes=descriptor.num_classes, aspp_convs_filters=8)
    options = TrainOptions(train_logdir=str(tmp_path / "run"), training_number_of_steps=1,
                           train_batch_size=2, weight_decay=0.0, seed=1,
                           loss="doubled:1,dice:0.5,lovasz_softmax:0.5",
                           loss_options=("dice.smooth=0.5",), optimizer="adam",
                           adam_learning_rate=0.01)
    trainer = Trainer(model, options, data, tf.distribute.OneDeviceStrategy("/cpu:0"))
    step, batches = trainer.make_step_fn(), iter(trainer.dataset())
    history = [{k: float(v) for k, v in step(batches).items()} for _ in range(12)]
    first, last = history[0], history[-1]
    terms = ("cross_entropy", "doubled", "dice", "lovasz_softmax")
    assert first["doubled"] == pytest.approx(2 * first["cross_entropy"], rel=1e-5)
    assert first["total_loss"] == pytest.approx(sum(first[t] for t in terms) + first[
        "weight_decay"], rel=1e-5)
    for term in terms:
        assert last[term] < first[term], (term, first[term], last[term])


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_every_registered_loss_keeps_the_contract(batch, name):
    """Each registered loss, at its default hyperparameters: named terms of the contract's
    types, finite and positive on random logits, with a gradient that reaches the logits
    and ignores the ignored pixels."""
    logits, labels = batch
    logits = tf.Variable(logits)
    with tf.GradientTape() as tape:
        terms = losses.get_loss(name)()(logits, labels, losses.LossSpec(C, 255))
        total = tf.add_n([losses.replica_term(term) for term in terms.values()])
    assert terms and all(isinstance(t, (losses.PixelLosses, losses.RegionLoss))
                         for t in terms.values())
    assert np.isfinite(float(total)) and float(total) > 0
    gradient = tape.gradient(total, logits).numpy()
    assert np.abs(gradient).max() > 0
    np.testing.assert_array_equal(gradient[0, :2], 0.0)  # the batch's ignored rows
