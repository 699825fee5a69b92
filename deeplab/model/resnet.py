"""ResNet-v1 backbones (50, 101 and their `_beta` variants) as DeepLab builds them.

The root is a 7x7 conv (stride 2) for resnet_v1_*, or three 3x3 convs (64, 64, 128 filters,
the first with stride 2) for the `_beta` variants; then a 3x3 max pool (stride 2, SAME).
Four blocks of bottleneck units follow (1x1 -> 3x3 -> 1x1, expansion 4); only the last unit
of blocks 1-3 strides, on its 3x3 conv, and block 4 never strides, so the nominal output
stride is 32. Once the requested output stride is reached, later strides become atrous
rates; block 4's three units multiply that rate by `options.multi_grid`.

TF1 scopes: `resnet_v1_{50,101}/{conv1 | conv1_1..conv1_3}`,
`.../block{b}/unit_{u}/bottleneck_v1/{shortcut,conv1,conv2,conv3}`. The `_beta` variants
use the same scope as their plain counterpart (`resnet_v1_101`, not `resnet_v1_101_beta`).
"""

from __future__ import annotations

import dataclasses

import keras

from deeplab.model.backbone_spec import (
    OUTPUT,
    SUBTRACT_MEAN,
    UNIT_RANGE,
    AtrousSchedule,
    BackboneSpec,
)
from deeplab.model.layers import NormSpec, conv_norm_act, keras_name


@dataclasses.dataclass(frozen=True)
class Block:
    """`num_units` bottleneck units under scope `name`; only the last unit strides.

    Units output `4 * bottleneck` channels.
    """

    name: str
    bottleneck: int
    num_units: int
    stride: int
    use_multi_grid: bool = False


def _blocks(block3_units: int) -> tuple[Block, ...]:
    return (Block("block1", 64, 3, 2), Block("block2", 128, 4, 2),
            Block("block3", 256, block3_units, 2), Block("block4", 512, 3, 1, True))


BLOCKS = {50: _blocks(6), 101: _blocks(23)}
EXPANSION = 4
ROOT_STRIDE = 4  # the root conv and pool1 each halve the resolution

# Scope (below the network scope) whose output feeds the decoder at stride 4: the conv3 of
# block1's second unit, after its BatchNorm, before the residual addition and ReLU.
DECODER_END_POINT = "block1/unit_2/bottleneck_v1/conv3"
DECODER_STRIDE = 4

NORM_EPSILON = 1e-5
NORM_DECAY = 0.95


def network_scope(model_variant: str) -> str:
    """TF1 scope of the network: 'resnet_v1_101_beta' -> 'resnet_v1_101'."""
    return model_variant.removesuffix("_beta")


def depth(model_variant: str) -> int:
    """Number of layers: 'resnet_v1_101_beta' -> 101."""
    return int(network_scope(model_variant).rsplit("_", 1)[1])


def _root(images, scope: str, beta: bool, norm: NormSpec):
    """[B, H, W, 3] -> [B, ceil(H / 4), ceil(W / 4), 128 (beta) or 64]."""
    if beta:
        x = conv_norm_act(images, 64, 3, f"{scope}/conv1_1", norm, stride=2)
        x = conv_norm_act(x, 64, 3, f"{scope}/conv1_2", norm)
        x = conv_norm_act(x, 128, 3, f"{scope}/conv1_3", norm)
    else:
        x = conv_norm_act(images, 64, 7, f"{scope}/conv1", norm, stride=2)
    return keras.layers.MaxPooling2D(3, strides=2, padding="same",
                                     name=keras_name(f"{scope}/pool1"))(x)


def _shortcut(x, out_depth: int, scope: str, stride: int, norm: NormSpec):
    """Projection (1x1 conv + BN) when the depth changes, else a strided subsample."""
    if x.shape[-1] == out_depth:
        if stride == 1:
            return x
        # The original's `subsample`: a 1x1 max pool with the stride, i.e. x[:, ::s, ::s].
        return keras.layers.MaxPooling2D(1, strides=stride, name=keras_name(scope))(x)
    return conv_norm_act(x, out_depth, 1, scope, norm, stride=stride, activation=None)


def _bottleneck(x, bottleneck: int, scope: str, norm: NormSpec, stride: int, rate: int,
                end_points: dict):
    """One unit: [B, H, W, C] -> [B, ceil(H / stride), ceil(W / stride), 4 * bottleneck].

    relu(shortcut(x) + BN(conv3(relu(BN(conv2(relu(BN(conv1(x))))))))), the stride and the
    atrous rate on the 3x3 conv2 (`conv2d_same`).
    """
    out_depth = EXPANSION * bottleneck
    shortcut = _shortcut(x, out_depth, f"{scope}/shortcut", stride, norm)
    residual = conv_norm_act(x, bottleneck, 1, f"{scope}/conv1", norm)
    residual = conv_norm_act(residual, bottleneck, 3, f"{scope}/conv2", norm, stride=stride,
                             rate=rate)
    residual = conv_norm_act(residual, out_depth, 1, f"{scope}/conv3", norm, activation=None)
    end_points[f"{scope}/conv3"] = residual
    x = keras.layers.Add(name=keras_name(f"{scope}/add"))([shortcut, residual])
    return keras.layers.ReLU(name=keras_name(f"{scope}/relu"))(x)


def _unit_strides(blocks, output_stride: int, multi_grid):
    """Yields (block, unit index, stride, rate) for every unit, as `stack_blocks_dense`;
    block 4's units multiply their rate by `multi_grid`."""
    schedule = AtrousSchedule(output_stride, current_stride=ROOT_STRIDE)
    for block in blocks:
        for u in range(block.num_units):
            stride, rate = schedule.step(block.stride if u == block.num_units - 1 else 1)
            unit_rate = multi_grid[u] if block.use_multi_grid else 1
            yield block, u, stride, rate * unit_rate
    schedule.check("ResNet")


def build(images, options, norm: NormSpec) -> dict:
    """ResNet-v1 feature extractor (see `backbone_spec` for the returned mapping).

    images: preprocessed [B, H, W, 3]. Returns {4: [B, H/4, W/4, 256], OUTPUT: [B, H/OS,
    W/OS, 2048]}; sizes round up as in `conv2d_same`.
    """
    variant = options.model_variant
    scope = network_scope(variant)
    multi_grid = options.multi_grid or (1, 1, 1)
    x = _root(images, scope, variant.endswith("_beta"), norm)
    plan = list(_unit_strides(BLOCKS[depth(variant)], options.output_stride, multi_grid))
    end_points: dict = {}
    for block, u, stride, rate in plan:
        unit_scope = f"{scope}/{block.name}/unit_{u + 1}/bottleneck_v1"
        x = _bottleneck(x, block.bottleneck, unit_scope, norm, stride, rate, end_points)
    return {DECODER_STRIDE: end_points[f"{scope}/{DECODER_END_POINT}"], OUTPUT: x}


def preprocessing(variant: str) -> str:
    """Plain resnet_v1_* subtract the ImageNet mean; the `_beta` variants use unit range."""
    return UNIT_RANGE if variant.endswith("_beta") else SUBTRACT_MEAN


SPEC = BackboneSpec("resnet", ("resnet_v1_50", "resnet_v1_50_beta", "resnet_v1_101",
                               "resnet_v1_101_beta"), build, NORM_EPSILON, NORM_DECAY,
                    preprocessing=preprocessing)
