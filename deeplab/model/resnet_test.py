"""ResNet-v1 backbones: shapes, strides, parameter counts, TF1 names, multi-grid."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deeplab.checkpoints.io import variable_map
from deeplab.model import resnet
from deeplab.model.backbone_spec import OUTPUT
from deeplab.model.deeplab import backbone_norm, build_model
from deeplab.model.options import ModelOptions

# Keras' ResNet50 (include_top=False) holds 23,587,712 parameters, 26,560 of them conv
# biases that slim's convs followed by BatchNorm do not have; its architecture is the
# plain resnet_v1_50 (the stride sits on a different conv, which changes no count).
KERAS_RESNET50_WITHOUT_BIASES = 23_587_712 - 26_560
BN_PARAMS = 4  # gamma, beta, moving_mean, moving_variance per channel


def _conv_bn(k: int, c_in: int, c_out: int) -> int:
    return k * k * c_in * c_out + BN_PARAMS * c_out


def _expected_params(units, beta: bool) -> int:
    """Backbone parameters from the architecture alone (independent of resnet.py)."""
    if beta:
        total = _conv_bn(3, 3, 64) + _conv_bn(3, 64, 64) + _conv_bn(3, 64, 128)
        c_in = 128
    else:
        total, c_in = _conv_bn(7, 3, 64), 64
    for num_units, d in zip(units, (64, 128, 256, 512), strict=True):
        for _ in range(num_units):
            total += _conv_bn(1, c_in, d) + _conv_bn(3, d, d) + _conv_bn(1, d, 4 * d)
            if c_in != 4 * d:
                total += _conv_bn(1, c_in, 4 * d)
            c_in = 4 * d
    return total


UNITS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def _backbone(variant: str, output_stride: int = 16, multi_grid=None, size=None):
    options = ModelOptions(model_variant=variant, output_stride=output_stride,
                           multi_grid=multi_grid)
    images = keras.Input(shape=(size, size, 3))
    out = resnet.build(images, options, backbone_norm(options))
    return keras.Model(images, [out[OUTPUT], out[4]])


def _ceil_halvings(size: int, times: int) -> int:
    for _ in range(times):
        size = -(-size // 2)
    return size


@pytest.mark.parametrize("variant", ["resnet_v1_50", "resnet_v1_50_beta"])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_output_shapes(variant, output_stride):
    model = _backbone(variant, output_stride)
    features, low_level = model(np.zeros((1, 65, 65, 3), np.float32))
    side = (65 - 1) // output_stride + 1
    assert features.shape == (1, side, side, 2048)
    assert low_level.shape == (1, 17, 17, 256)  # stride 4


@pytest.mark.parametrize("height,width", [(33, 33), (50, 47)])
def test_unknown_input_size(height, width):
    model = _backbone("resnet_v1_50_beta", 16)
    features, low_level = model(np.zeros((2, height, width, 3), np.float32))
    assert features.shape == (2, _ceil_halvings(height, 4), _ceil_halvings(width, 4), 2048)
    assert low_level.shape == (2, _ceil_halvings(height, 2), _ceil_halvings(width, 2), 256)


def test_expected_params_match_an_external_count():
    assert _expected_params(UNITS[50], beta=False) == KERAS_RESNET50_WITHOUT_BIASES


@pytest.mark.parametrize("variant", ["resnet_v1_50", "resnet_v1_50_beta"])
def test_parameter_count(variant):
    model = _backbone(variant)
    assert model.count_params() == _expected_params(UNITS[50], variant.endswith("_beta"))


def test_parameter_count_matches_reference_vars(reference_fixtures):
    rows = _reference_vars(reference_fixtures)
    backbone = sum(int(np.prod(shape)) for name, shape in rows.items()
                   if name.startswith("resnet_v1_101/"))
    assert backbone == _expected_params(UNITS[101], beta=True)
    assert _backbone("resnet_v1_101_beta").count_params() == backbone


def _reference_vars(folder) -> dict[str, tuple[int, ...]]:
    rows = {}
    for line in (folder / "resnet_v1_101_beta" / "vars.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        name, shape = line.split("\t")[:2]
        rows[name.removesuffix(":0")] = tuple(int(d) for d in shape.split("x"))
    return rows


def test_variable_names_match_reference(reference_fixtures):
    options = ModelOptions(model_variant="resnet_v1_101_beta", atrous_rates=(6, 12, 18),
                           decoder_output_stride=4)
    names = {name: tuple(var.shape) for name, var in variable_map(build_model(options)).items()}
    assert names == _reference_vars(reference_fixtures)


def test_plain_root_and_scope():
    names = variable_map(_backbone("resnet_v1_50"))
    assert tuple(names["resnet_v1_50/conv1/weights"].shape) == (7, 7, 3, 64)
    assert "resnet_v1_50/conv1_1/weights" not in names
    beta = variable_map(_backbone("resnet_v1_50_beta"))
    assert tuple(beta["resnet_v1_50/conv1_3/weights"].shape) == (3, 3, 64, 128)
    # Units whose depth does not change subsample instead of projecting.
    assert "resnet_v1_50/block1/unit_3/bottleneck_v1/shortcut/weights" not in beta
    assert "resnet_v1_50/block2/unit_1/bottleneck_v1/shortcut/weights" in beta


def _conv(model, block: int, unit: int, conv: str = "conv2"):
    return model.get_layer(f"resnet_v1_50.block{block}.unit_{unit}.bottleneck_v1.{conv}")


@pytest.mark.parametrize("output_stride,multi_grid,rates", [
    (16, None, (2, 2, 2)), (16, (1, 2, 4), (2, 4, 8)), (8, (1, 2, 4), (4, 8, 16)),
    (32, (1, 2, 1), (1, 2, 1))])
def test_multi_grid_sets_block4_rates(output_stride, multi_grid, rates):
    model = _backbone("resnet_v1_50", output_stride, multi_grid, size=65)
    assert tuple(_conv(model, 4, u + 1).dilation_rate[0] for u in range(3)) == rates


def test_strides_turn_into_rates_at_output_stride_8():
    model = _backbone("resnet_v1_50", 8, size=65)
    assert _conv(model, 1, 3).strides == (2, 2)  # stride on conv2 of the last unit
    assert _conv(model, 1, 3, "conv1").strides == (1, 1)
    assert _conv(model, 2, 4).strides == (1, 1)  # stride 8 reached: no more strides
    assert _conv(model, 2, 4).dilation_rate == (1, 1)
    assert _conv(model, 3, 1).dilation_rate == (2, 2)
    assert _conv(model, 3, 6).dilation_rate == (2, 2)


def test_low_level_is_block1_unit2_conv3_and_bn_settings():
    model = _backbone("resnet_v1_50_beta")
    low_level = model.outputs[1]
    producer = low_level._keras_history.operation
    assert producer.name == "resnet_v1_50.block1.unit_2.bottleneck_v1.conv3.BatchNorm"
    assert producer.epsilon == pytest.approx(1.001e-5)  # 1e-5, raised as TF1's fused kernel does
    assert producer.momentum == pytest.approx(0.95)


# ResNet-18: lite units (two 3x3 convs, no expansion), two units per block.


def _expected_params_18(beta: bool) -> int:
    """ResNet-18 backbone parameters from the architecture alone (independent of resnet.py):
    the beta root is 16, 16, 32 wide (root depth multiplier 0.25)."""
    if beta:
        total = _conv_bn(3, 3, 16) + _conv_bn(3, 16, 16) + _conv_bn(3, 16, 32)
        c_in = 32
    else:
        total, c_in = _conv_bn(7, 3, 64), 64
    for d in (64, 128, 256, 512):
        for _ in range(2):
            total += _conv_bn(3, c_in, d) + _conv_bn(3, d, d)
            if c_in != d:
                total += _conv_bn(1, c_in, d)
            c_in = d
    return total


@pytest.mark.parametrize("variant", ["resnet_v1_18", "resnet_v1_18_beta"])
def test_resnet18_output_shapes_and_params(variant):
    model = _backbone(variant, 16)
    features, low_level = model(np.zeros((1, 65, 65, 3), np.float32))
    assert features.shape == (1, 5, 5, 512)
    assert low_level.shape == (1, 17, 17, 64)
    assert model.count_params() == _expected_params_18(variant.endswith("_beta"))


def test_resnet18_low_level_is_before_the_residual_add_and_rates():
    model = _backbone("resnet_v1_18_beta", 8, (1, 2), size=65)
    producer = model.outputs[1]._keras_history.operation
    assert producer.name == "resnet_v1_18.block1.unit_1.lite_bottleneck_v1.conv2.BatchNorm"

    def conv(block, unit, name):
        return model.get_layer(f"resnet_v1_18.block{block}.unit_{unit}.lite_bottleneck_v1.{name}")

    assert conv(1, 2, "conv2").strides == (2, 2) and conv(1, 2, "conv1").strides == (1, 1)
    assert conv(3, 1, "conv1").dilation_rate == (2, 2)  # OS8: block3 runs atrous
    # block4: rate 4 times multi_grid (1, 2), on both convs of each unit
    assert [conv(4, u, c).dilation_rate[0] for u in (1, 2) for c in ("conv1", "conv2")] == \
        [4, 4, 8, 8]


def test_resnet18_multi_grid_needs_two_entries():
    with pytest.raises(ValueError, match="multi_grid.*2 entries"):
        ModelOptions(model_variant="resnet_v1_18", multi_grid=(1, 2, 4))
    assert ModelOptions(model_variant="resnet_v1_50", multi_grid=(1, 2, 4)).multi_grid
