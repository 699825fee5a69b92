"""Small models for the export tests (not used by the library)."""

from __future__ import annotations

import keras
import numpy as np

from deeplab.model import folded_conv
from deeplab.model.batch_norm import BatchNormalization
from deeplab.model.deeplab import build_model
from deeplab.model.layer_walk import all_layers
from deeplab.model.options import ModelOptions

# A frozen graph runs oneDNN's kernels on constant weights, a Keras model on variables; on
# hosts where oneDNN is on (AVX-512 CPUs) the two sum in different orders, probabilities differ
# by ~2e-5 and a pixel at a near-tie can change label. Exports are held to 99.9 % agreement
# (`deeplab.export.verify.FLOAT`, `deeplab.zoo.verify.MIN_AGREEMENT`); so are the tests.
MIN_LABEL_AGREEMENT = 0.999


def assert_labels_agree(got, want, min_agreement: float = MIN_LABEL_AGREEMENT) -> None:
    """Label maps of one shape agreeing on at least `min_agreement` of their pixels."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    agreement = float(np.mean(got == want))
    assert agreement >= min_agreement, \
        f"labels agree on {100 * agreement:.3f}% of {want.size} pixels"


SMALL_OPTIONS = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.5, num_classes=5)
TINY_OPTIONS = ModelOptions(num_classes=3, output_stride=16, decoder_output_stride=4)


def calibrate_batch_norm(model: keras.Model, height: int = 65, width: int = 65,
                         seed: int = 0) -> None:
    """Sets every BatchNorm's moving statistics to those of one random batch.

    A freshly initialised network's activations vanish (logits ~1e-11, ties everywhere);
    after this its logits vary by a few units, so label comparisons mean something.
    """
    layers = [layer for layer in all_layers(model)
              if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    images = np.random.default_rng(seed).uniform(0, 255, (2, height, width, 3))
    model(images.astype(np.float32), training=True)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum


def small_model(options: ModelOptions = SMALL_OPTIONS, seed: int = 1,
                glorot_logits: bool = True) -> keras.Model:
    """MobileNetV2 x0.5 DeepLab with 5 classes and calibrated batch norm; its logits
    Glorot-uniform (`redraw_logits`) unless `glorot_logits` is False (the original's
    fresh-layer draw)."""
    keras.utils.set_random_seed(seed)
    model = build_model(options)
    if glorot_logits:
        redraw_logits(model, seed)
    calibrate_batch_norm(model)
    return model


def redraw_logits(model: keras.Model, seed: int = 0) -> None:
    """Draws the logits kernel Glorot-uniform instead of the original's truncated normal
    of stddev 0.01 for fresh layers: a random test network then has logits of a trained
    one's size, and its labels survive quantisation noise as a trained network's do
    (with 0.01 the class probabilities are nearly uniform and ties flip)."""
    layer = next((lay for lay in all_layers(model) if lay.name == "logits.semantic"),
                 None)
    if layer is not None:
        draw = keras.initializers.GlorotUniform(seed=seed)
        layer.kernel.assign(draw(layer.kernel.shape, dtype="float32"))


def tiny_model(num_classes: int = TINY_OPTIONS.num_classes, seed: int = 0) -> keras.Model:
    """[B, H, W, 3] raw pixels -> logits at stride 4 (average pool + 1x1 conv); fits
    TINY_OPTIONS. Converts in about a second."""
    images = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(2.0 / 255.0, offset=-1.0)(images)
    x = keras.layers.AveragePooling2D(4, 4, padding="same")(x)
    x = keras.layers.Conv2D(num_classes, 1, kernel_initializer=keras.initializers.RandomNormal(
        stddev=1.0, seed=seed), bias_initializer="zeros")(x)
    return keras.Model(images, x)


def tiny_folded_model(num_classes: int = TINY_OPTIONS.num_classes, seed: int = 0) -> keras.Model:
    """[B, H, W, 3] raw pixels -> logits at stride 4 through a 3x3 conv, a depthwise conv
    and a 1x1 conv with bias, each followed by a BatchNorm linked for folding
    (`deeplab.model.folded_conv.fold_batch_norm`); fits TINY_OPTIONS, BatchNorm calibrated."""
    keras.utils.set_random_seed(seed)
    images = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(2.0 / 255.0, offset=-1.0)(images)
    for layer in (folded_conv.Conv2D(8, 3, strides=4, padding="same", use_bias=False),
                  folded_conv.DepthwiseConv2D(3, padding="same", use_bias=False),
                  folded_conv.Conv2D(num_classes, 1, use_bias=True)):
        norm = BatchNormalization()
        x = norm(layer(x))
        folded_conv.fold_batch_norm(layer, norm)
    model = keras.Model(images, x)
    calibrate_batch_norm(model)
    return model
