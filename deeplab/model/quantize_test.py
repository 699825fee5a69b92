"""Quantization-aware training: the step gate, per-channel weights, ranges in checkpoints
(resume) and the INT8 export against the fake-quantised Keras model."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab.checkpoints.io import model_checkpoint, restore_model, variable_map
from deeplab.data.pipeline import InputOptions
from deeplab.datasets.synthetic import write_synthetic_dataset
from deeplab.export import int8
from deeplab.export.contract import ExportModule, ExportOptions
from deeplab.export.frozen import freeze
from deeplab.export.testing import redraw_logits
from deeplab.model import folded_conv, quantize
from deeplab.model.deeplab import build_model
from deeplab.model.options import ModelOptions
from deeplab.train.options import TrainOptions
from deeplab.train.trainer import DataOptions, Trainer, freeze_batch_norm

OPTIONS = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.25, num_classes=3,
                       aspp_convs_filters=16, quantize_delay_step=0)


def _images(count: int, size: int = 33, seed: int = 0) -> np.ndarray:
    """float32 [count, size, size, 3] pixels 0..255: smooth ramps plus blocks (regions)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    ramps = np.stack([255 * y, 255 * x, 127 + 100 * np.sin(9 * (x + y))], -1)
    blocks = rng.uniform(-80, 80, (count, 4, 4, 3)).repeat(-(-size // 4), 1).repeat(
        -(-size // 4), 2)[:, :size, :size]
    return np.clip(ramps + blocks, 0, 255).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    """A QAT network (always on) with frozen, calibrated BatchNorm and ranges from a batch."""
    keras.utils.set_random_seed(3)
    network = build_model(OPTIONS)
    redraw_logits(network, 3)
    norms = [layer for layer in network._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:  # moving statistics := those of the test images (no dead ReLUs)
        layer.momentum = 0.0
    network(_images(4), training=True)  # batch statistics: nothing folded, no range update
    freeze_batch_norm(network)
    network(_images(4), training=True)  # the first training batch sets the ranges
    return network


def test_every_convolution_has_ranges_named_as_the_original():
    network = build_model(OPTIONS)
    layers = quantize.quantized_layers(network)
    names = variable_map(network)
    assert layers and all(layer._quantizer is not None for layer in layers)
    assert "logits/semantic/act_quant/min" in names
    assert "MobilenetV2/Conv/act_quant/max" in names
    float_names = variable_map(build_model(dataclasses.replace(OPTIONS, quantize_delay_step=-1)))
    assert set(names) - set(float_names) == {
        n for n in names if n.endswith(("act_quant/min", "act_quant/max"))}


def test_weights_round_per_output_channel_symmetric_on_255_levels():
    layer = folded_conv.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False)
    layer.build((None, 8, 8, 4))
    kernel = tf.random.stateless_normal((3, 3, 4, 2), (1, 2)) * tf.range(1.0, 9.0)[None, None,
                                                                                   None, :2]
    quantized = quantize.Quantizer(layer).kernel(kernel, output_axes=2).numpy()
    for channel in range(8):  # output channel c * 2 + m
        c, m = divmod(channel, 2)
        original, rounded = kernel.numpy()[..., c, m], quantized[..., c, m]
        scale = np.abs(original).max() / 127
        np.testing.assert_allclose(rounded / scale, np.round(rounded / scale), atol=1e-3)
        assert np.abs(rounded - original).max() <= scale / 2 + 1e-6
        assert np.abs(rounded).max() == pytest.approx(np.abs(original).max(), rel=1e-5)


def test_quantisation_starts_at_the_delay_step(model):
    step = tf.Variable(0, dtype=tf.int64)
    quantize.attach(model, step, delay_step=2)
    images = _images(2, seed=1)
    try:
        outputs = []
        for value in range(4):
            step.assign(value)
            outputs.append(model(images, training=False).numpy())
        quantize.attach(model)  # always on, as evaluation and export
        always = model(images, training=False).numpy()
    finally:
        quantize.attach(model)
    np.testing.assert_array_equal(outputs[0], outputs[1])
    np.testing.assert_array_equal(outputs[2], outputs[3])
    np.testing.assert_array_equal(outputs[2], always)
    assert np.abs(outputs[2] - outputs[1]).max() > 1e-3


def test_ranges_follow_training_batches_and_are_saved(model, tmp_path):
    layer = quantize.quantized_layers(model)[0]
    low, high = float(layer._quantizer.min.numpy()), float(layer._quantizer.max.numpy())
    assert low <= 0.0 < high  # set by the fixture's training batch
    prefix = model_checkpoint(model).write(str(tmp_path / "qat"))
    model(_images(2, seed=5) * 0.5, training=True)  # EMA moves the range a little
    moved = float(layer._quantizer.max.numpy())
    assert moved != high and abs(moved - high) < 0.01 * high
    restore_model(model, prefix)
    assert float(layer._quantizer.max.numpy()) == high


def test_int8_export_uses_the_qat_ranges_and_weights(model, tmp_path):
    """The converter takes every convolution's activation range and its rounded kernel
    from the fake-quantised graph, as the Keras model computes them."""
    module = ExportModule(model, OPTIONS, ExportOptions((33, 33)))
    images = [image[None].astype(np.uint8) for image in _images(4)]
    path = tmp_path / "model_int8.tflite"
    path.write_bytes(int8.convert(freeze(module), images))
    interpreter = tf.lite.Interpreter(str(path))
    tensors = interpreter.get_tensor_details()
    scales = np.array([t["quantization"][0] for t in tensors if t["dtype"] == np.int8])
    layers = quantize.quantized_layers(model)
    for layer in layers:
        low, high = float(layer._quantizer.min.numpy()), float(layer._quantizer.max.numpy())
        assert np.isclose(scales, (high - low) / 255, rtol=1e-4).any(), layer.name
    first = layers[0]  # MobilenetV2/Conv: [3, 3, 3, F] kernel, BatchNorm folded
    with folded_conv.baked(model, module.folded):
        kernel, _, _ = first._kernel_bias_activation(False, output_axes=1)
    filters = np.transpose(kernel.numpy(), (3, 0, 1, 2))  # TFLite's [F, kh, kw, C]
    stored = next(t for t in tensors if t["dtype"] == np.int8 and
                  tuple(t["shape"]) == filters.shape)
    values = interpreter.get_tensor(stored["index"]).astype(np.float32)
    per_channel = stored["quantization_parameters"]["scales"].reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(values * per_channel, filters, rtol=1e-5, atol=1e-7)


def test_a_resumed_qat_run_restores_step_ranges_and_outputs(tmp_path):
    folder = str(tmp_path / "data")
    descriptor = write_synthetic_dataset(folder, num_train=4, num_val=1, image_size=(33, 33))
    data = DataOptions("synthetic", folder, "train", descriptor.num_classes,
                       descriptor.ignore_label, InputOptions(crop_size=(33, 33)))
    options = dataclasses.replace(OPTIONS, num_classes=descriptor.num_classes,
                                  quantize_delay_step=1)

    def trainer(steps):
        return Trainer(options, TrainOptions(
            train_logdir=str(tmp_path / "run"), training_number_of_steps=steps,
            train_batch_size=2, base_learning_rate=0.01, log_steps=1, seed=1,
            save_interval_secs=3600, fine_tune_batch_norm=False), data,
            tf.distribute.OneDeviceStrategy("/cpu:0"))

    first = trainer(2)
    first.restore()
    first.run()
    second = trainer(3)
    second.restore()
    assert second.step == 2
    saved = {n: v.numpy() for n, v in variable_map(first.model).items()}
    restored = {n: v.numpy() for n, v in variable_map(second.model).items()}
    assert any(n.endswith("act_quant/max") and v > 0 for n, v in restored.items())
    for name, value in saved.items():
        np.testing.assert_array_equal(restored[name], value, err_msg=name)
    images = _images(2, seed=4)
    np.testing.assert_array_equal(second.model(images).numpy(), first.model(images).numpy())
    assert second.run().step == 3
