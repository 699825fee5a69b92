"""ResNet-v1 backbones (18, 50, 101 and their `_beta` variants) as DeepLab builds them.

The root is a 7x7 conv (stride 2) for resnet_v1_*, or three 3x3 convs (64, 64, 128 filters,
the first with stride 2; ResNet-18 beta scales them by its root depth multiplier 0.25 to
16, 16, 32) for the `_beta` variants; then a 3x3 max pool (stride 2, SAME).
Four blocks of residual units follow: bottleneck units (1x1 -> 3x3 -> 1x1, expansion 4) for
50 / 101, two "lite" units (3x3 -> 3x3, no expansion) per block for 18. Only the last unit
of blocks 1-3 strides, on its (second) 3x3 conv, and block 4 never strides, so the nominal
output stride is 32. Once the requested output stride is reached, later strides become
atrous rates; block 4's units multiply that rate by `options.multi_grid` (3 entries for
50 / 101, 2 for 18).

TF1 scopes: `resnet_v1_{18,50,101}/{conv1 | conv1_1..conv1_3}`,
`.../block{b}/unit_{u}/bottleneck_v1/{shortcut,conv1,conv2,conv3}` (ResNet-18:
`.../lite_bottleneck_v1/{shortcut,conv1,conv2}`). The `_beta` variants use the same scope
as their plain counterpart (`resnet_v1_101`, not `resnet_v1_101_beta`).
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
    """`num_units` residual units under scope `name`; only the last unit strides.

    Bottleneck units output `4 * bottleneck` channels, lite units `bottleneck`.
    """

    name: str
    bottleneck: int
    num_units: int
    stride: int
    use_multi_grid: bool = False
    lite: bool = False


def _blocks(block3_units: int) -> tuple[Block, ...]:
    return (Block("block1", 64, 3, 2), Block("block2", 128, 4, 2),
            Block("block3", 256, block3_units, 2), Block("block4", 512, 3, 1, True))


def _lite_blocks() -> tuple[Block, ...]:
    return (Block("block1", 64, 2, 2, lite=True), Block("block2", 128, 2, 2, lite=True),
            Block("block3", 256, 2, 2, lite=True), Block("block4", 512, 2, 1, True, True))


BLOCKS = {18: _lite_blocks(), 50: _blocks(6), 101: _blocks(23)}
EXPANSION = 4
ROOT_STRIDE = 4  # the root conv and pool1 each halve the resolution
# The beta root's width multiplier (the original's `root_depth_multiplier`): 0.25 for
# resnet_v1_18_beta, 1 for the deeper ones.
ROOT_DEPTH_MULTIPLIER = {18: 0.25, 50: 1.0, 101: 1.0}

# Scope (below the network scope) whose output feeds the decoder at stride 4, after its
# BatchNorm, before the residual addition and ReLU: the conv3 of block1's second unit
# (bottleneck), or the conv2 of block1's first unit (lite, ResNet-18).
DECODER_END_POINT = {
    False: "block1/unit_2/bottleneck_v1/conv3",
    True: "block1/unit_1/lite_bottleneck_v1/conv2",
}
DECODER_STRIDE = 4

NORM_EPSILON = 1e-5
NORM_DECAY = 0.95


def network_scope(model_variant: str) -> str:
    """TF1 scope of the network: 'resnet_v1_101_beta' -> 'resnet_v1_101'."""
    return model_variant.removesuffix("_beta")


def depth(model_variant: str) -> int:
    """Number of layers: 'resnet_v1_101_beta' -> 101."""
    return int(network_scope(model_variant).rsplit("_", 1)[1])


def _root(images, scope: str, beta: bool, norm: NormSpec, multiplier: float = 1.0):
    """[B, H, W, 3] -> [B, ceil(H / 4), ceil(W / 4), 128 * multiplier (beta) or 64]."""
    if beta:
        x = conv_norm_act(images, int(64 * multiplier), 3, f"{scope}/conv1_1", norm, stride=2)
        x = conv_norm_act(x, int(64 * multiplier), 3, f"{scope}/conv1_2", norm)
        x = conv_norm_act(x, int(128 * multiplier), 3, f"{scope}/conv1_3", norm)
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


def _lite_bottleneck(x, out_depth: int, scope: str, norm: NormSpec, stride: int, rate: int,
                     end_points: dict):
    """One ResNet-18 unit: [B, H, W, C] -> [B, ceil(H / stride), ceil(W / stride), out_depth].

    relu(shortcut(x) + BN(conv2(relu(BN(conv1(x)))))), both 3x3 at the atrous rate, the
    stride on conv2 (`conv2d_same`).
    """
    shortcut = _shortcut(x, out_depth, f"{scope}/shortcut", stride, norm)
    residual = conv_norm_act(x, out_depth, 3, f"{scope}/conv1", norm, rate=rate)
    residual = conv_norm_act(residual, out_depth, 3, f"{scope}/conv2", norm, stride=stride,
                             rate=rate, activation=None)
    end_points[f"{scope}/conv2"] = residual
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

    images: preprocessed [B, H, W, 3]. Returns {4: [B, H/4, W/4, 256 (64 for ResNet-18)],
    OUTPUT: [B, H/OS, W/OS, 2048 (512)]}; sizes round up as in `conv2d_same`.
    """
    variant = options.model_variant
    scope = network_scope(variant)
    blocks = BLOCKS[depth(variant)]
    lite = blocks[-1].lite
    multi_grid = options.multi_grid or (1,) * blocks[-1].num_units
    if len(multi_grid) != blocks[-1].num_units:
        raise ValueError(f"multi_grid={list(multi_grid)}: {variant} needs "
                         f"{blocks[-1].num_units} entries (one per block4 unit)")
    x = _root(images, scope, variant.endswith("_beta"), norm,
              ROOT_DEPTH_MULTIPLIER[depth(variant)])
    plan = list(_unit_strides(blocks, options.output_stride, multi_grid))
    end_points: dict = {}
    for block, u, stride, rate in plan:
        if lite:
            unit_scope = f"{scope}/{block.name}/unit_{u + 1}/lite_bottleneck_v1"
            x = _lite_bottleneck(x, block.bottleneck, unit_scope, norm, stride, rate,
                                 end_points)
        else:
            unit_scope = f"{scope}/{block.name}/unit_{u + 1}/bottleneck_v1"
            x = _bottleneck(x, block.bottleneck, unit_scope, norm, stride, rate, end_points)
    return {DECODER_STRIDE: end_points[f"{scope}/{DECODER_END_POINT[lite]}"], OUTPUT: x}


def preprocessing(variant: str) -> str:
    """Plain resnet_v1_* subtract the ImageNet mean; the `_beta` variants use unit range."""
    return UNIT_RANGE if variant.endswith("_beta") else SUBTRACT_MEAN


SPEC = BackboneSpec("resnet", ("resnet_v1_18", "resnet_v1_18_beta", "resnet_v1_50",
                               "resnet_v1_50_beta", "resnet_v1_101", "resnet_v1_101_beta"),
                    build, NORM_EPSILON, NORM_DECAY, preprocessing=preprocessing,
                    options=("multi_grid",))
