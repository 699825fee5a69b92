"""EdgeTPU-MobileNet backbone at depth multiplier 1.0 and 0.75: TF1 names, parameter counts,
checkpoint import, fused blocks, strides and atrous rates.

Expected figures come from the reference fixtures (vars.txt, README "EdgeTPU-DeepLab") and the
original's V3_EDGETPU conv_defs, not from the model.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

from deeplab.model import mobilenet_edgetpu
from deeplab.model.backbone_spec import OUTPUT
from deeplab.model.mobilenet_v3_test import backbone, check_reference_import
from deeplab.model.options import ModelOptions

# fixture folder: (depth multiplier, README per-scope parameter count of MobilenetEdgeTPU)
FOLDERS = {"mobilenet_edgetpu": (1.0, 2_849_312), "mobilenet_edgetpu_slim": (0.75, 1_689_928)}
FUSED = set(range(9))
RESIDUAL = {2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20}  # not 13 (residual=False)
# Depthwise dilation of expanded_conv_9 ... _21 per output stride (strided: _9 and _17).
RATES = {32: [1] * 13, 16: [1] * 9 + [2] * 4, 8: [1] + [2] * 8 + [4] * 4}
STRIDED = {32: [9, 17], 16: [9], 8: []}  # regular blocks whose depthwise still strides


def _model(output_stride=16, depth_multiplier=1.0) -> keras.Model:
    """The backbone alone, built once per setting (building is the slow part)."""
    return _cached_model(output_stride, depth_multiplier)


@functools.cache
def _cached_model(output_stride, depth_multiplier):
    options = ModelOptions(model_variant="mobilenet_edgetpu", output_stride=output_stride,
                           depth_multiplier=depth_multiplier)
    return backbone(mobilenet_edgetpu.SPEC, options)


def _scope(i):
    return mobilenet_edgetpu.NETWORK.block_scope(i).replace("/", ".")


@pytest.mark.parametrize("folder", sorted(FOLDERS))
def test_reference_checkpoint_imports(folder, reference_fixtures, reference_checkpoint):
    multiplier, parameters = FOLDERS[folder]
    model = _model(depth_multiplier=multiplier)
    check_reference_import(model, reference_fixtures / folder, "MobilenetEdgeTPU", parameters,
                           reference_checkpoint(folder))


def test_fused_blocks_residuals_and_activations():
    model = _model()
    names = {layer.name for layer in model.layers}
    assert {i for i in range(22) if f"{_scope(i)}.depthwise" not in names} == FUSED
    assert f"{_scope(0)}.expand" not in names  # expansion 1: projection only
    assert model.get_layer(f"{_scope(1)}.expand").kernel_size == (3, 3)
    assert model.get_layer(f"{_scope(1)}.expand").strides == (2, 2)
    assert model.get_layer(f"{_scope(9)}.expand").kernel_size == (1, 1)
    assert [model.get_layer(f"{_scope(i)}.depthwise").kernel_size[0] for i in range(9, 22)] \
        == [3] * 8 + [5] * 4 + [3]
    assert {i for i in range(22) if f"{_scope(i)}.add" in names} == RESIDUAL
    activations = [layer for layer in model.layers
                   if isinstance(layer, keras.layers.Activation)]
    assert len(activations) == 36
    assert {layer.name.rsplit(".", 1)[1] for layer in activations} == {"relu"}
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 58
    assert {(n.epsilon, n.momentum) for n in norms} == {(1e-3, 0.997)}


def test_depth_multiplier_075():
    model = _model(depth_multiplier=0.75)
    assert model.get_layer("MobilenetEdgeTPU.Conv").filters == 24
    assert model.get_layer(f"{_scope(0)}.project").filters == 16  # 12 rounds up to 16
    assert model.get_layer(f"{_scope(1)}.expand").filters == 128  # 16 * 8
    assert model.get_layer(f"{_scope(21)}.project").filters == 144
    assert model.get_layer("MobilenetEdgeTPU.Conv_1").filters == 960


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_shapes_and_rates_per_output_stride(output_stride):
    model = _model(output_stride)
    assert [model.get_layer(f"{_scope(i)}.depthwise").dilation_rate[0]
            for i in range(9, 22)] == RATES[output_stride]
    strided = [i for i in range(9, 22)
               if model.get_layer(f"{_scope(i)}.depthwise").strides[0] == 2]
    assert strided == STRIDED[output_stride]
    height, width = 50, 67
    out = model(np.zeros((1, height, width, 3), np.float32))
    assert set(out) == {OUTPUT}  # the original defines no decoder end points for it
    assert out[OUTPUT].shape == (1, -(-height // output_stride), -(-width // output_stride),
                                 1280)
