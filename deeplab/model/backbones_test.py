"""Every registered backbone, through the registry: shapes per stride with unknown sizes,
atrous consistency across output strides, a training step and save/restore of the network.

New backbones are covered by registering them; nothing here names one except to keep the
inputs tiny.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.checkpoints.io import model_checkpoint, variable_map
from deeplab.model import backbones
from deeplab.model.backbone_spec import OUTPUT, AtrousSchedule
from deeplab.model.deeplab import backbone_norm, build_model
from deeplab.model.options import ModelOptions

VARIANTS = backbones.MODEL_VARIANTS
SIZE = 65  # 2^k * n + 1 keeps every stage odd, so SAME and conv2d_same padding agree


def _options(variant: str, **fields) -> ModelOptions:
    small = {"depth_multiplier": 0.5} if "mobilenet" in variant else {}
    return ModelOptions(model_variant=variant, num_classes=3, **{**small, **fields})


def _backbone(options: ModelOptions) -> keras.Model:
    spec = backbones.get_backbone(options.model_variant)
    images = keras.Input((None, None, 3))
    features = spec.build(images, options, backbone_norm(options))
    return keras.Model(images, {str(k): v for k, v in features.items()})


def _images(size=SIZE, batch=1, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def test_schedule_turns_strides_into_rates_after_the_output_stride():
    schedule = AtrousSchedule(output_stride=8, current_stride=2)
    assert [schedule.step(s) for s in (2, 1, 2, 1, 2, 2)] == [
        (2, 1), (1, 1), (2, 1), (1, 1), (1, 1), (1, 2)]
    schedule.check("x")
    with pytest.raises(ValueError, match="output_stride=32 cannot be reached"):
        short = AtrousSchedule(output_stride=32)
        short.step(2)
        short.check("tiny")


def test_registry_knows_every_variant_once_and_refuses_others():
    assert len(VARIANTS) == len(set(VARIANTS))
    for variant in VARIANTS:
        assert variant in backbones.get_backbone(variant).variants
    with pytest.raises(ValueError, match="unknown model_variant 'vgg16'; registered: xception"):
        backbones.get_backbone("vgg16")
    with pytest.raises(ValueError, match="model_variant='vgg16'"):
        ModelOptions(model_variant="vgg16")


def _check_strides(out: dict, output_stride: int, size: int) -> None:
    """Every entry of a feature mapping has (size - 1) // stride + 1 pixels a side."""
    assert OUTPUT in out
    for key, value in out.items():
        stride = output_stride if key == OUTPUT else int(key)
        expected = (size - 1) // stride + 1
        assert tuple(value.shape[1:3]) == (expected, expected), (key, value.shape)


def _stride(variant: str, wanted: int) -> int:
    """`wanted`, or the nearest output stride the variant builds at (nas_hnasnet: 8)."""
    strides = backbones.get_backbone(variant).output_strides
    return min(strides, key=lambda s: abs(s - wanted))


@pytest.mark.parametrize("variant", VARIANTS)
def test_features_per_stride_with_unknown_sizes(variant):
    stride = _stride(variant, 16)
    model = _backbone(_options(variant, output_stride=stride))
    assert model.input.shape[1:3] == (None, None)
    for size in (SIZE, 33):
        _check_strides(model(_images(size), training=False), stride, size)


ATROUS = [v for v in VARIANTS if backbones.get_backbone(v).atrous]


@pytest.mark.parametrize("variant", ATROUS)
def test_atrous_features_at_stride_8_subsample_to_those_at_16(variant):
    """With the same weights, OS8 features at every other pixel equal the OS16 features:
    the strides the OS8 network drops reappear exactly as atrous rates."""
    os16 = _backbone(_options(variant, output_stride=16))
    os8 = _backbone(_options(variant, output_stride=8))
    target = {v.path: v for v in os8.weights}
    assert len(target) == len(os16.weights)
    for weight in os16.weights:
        target[weight.path].assign(weight.value)
    images = _images(size=129)
    fine_out = os8(images, training=False)
    _check_strides(fine_out, 8, 129)
    coarse = os16(images, training=False)[OUTPUT].numpy()
    fine = fine_out[OUTPUT].numpy()
    np.testing.assert_allclose(fine[:, ::2, ::2], coarse, atol=1e-4 * coarse.std() + 1e-6)


@pytest.mark.parametrize("variant", VARIANTS)
def test_training_step_and_save_restore(variant, tmp_path):
    """At output stride 32 (or the variant's nearest): gradients reach every weight; a
    checkpoint restores exactly."""
    stride = _stride(variant, 32)
    options = _options(variant, output_stride=stride, aspp_convs_filters=8)
    model = build_model(options)
    images = _images(size=65, batch=2)
    side = 64 // stride + 1
    labels = np.random.RandomState(1).randint(0, 3, (2, side, side))
    optimizer = keras.optimizers.SGD(0.01)
    before = {n: v.numpy().copy() for n, v in variable_map(model).items()}
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        assert tuple(logits.shape) == (2, side, side, 3)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)
    optimizer.apply(grads, model.trainable_variables)
    assert np.isfinite(loss.numpy())
    changed = [n for n, v in variable_map(model).items()
               if not np.array_equal(v.numpy(), before[n])]
    assert len(changed) >= len(model.trainable_variables)  # weights and BN statistics moved
    prefix = model_checkpoint(model).write(str(tmp_path / "ckpt"))
    expected = model(images, training=False).numpy()
    clone = build_model(options)
    model_checkpoint(clone).read(prefix).assert_consumed()
    np.testing.assert_array_equal(clone(images, training=False).numpy(), expected)
