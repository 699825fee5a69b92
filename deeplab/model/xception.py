"""Aligned Xception backbones (41, 65, 71) as DeepLab uses them.

Every max-pool of the original Xception is a strided separable conv; once the requested
output stride is reached, later strides become atrous rates. Each unit is three separable
convs (ReLU before each, depthwise + BN + pointwise + BN) plus a shortcut; the exit flow's
last unit puts the ReLUs inside the separable convs instead and has no shortcut. The ReLU
before a unit's second and third separable conv is built as the previous pointwise conv's
activation (the same function), so a folded BatchNorm lets that convolution fuse it.
"""

from __future__ import annotations

import dataclasses

import keras

from deeplab.model.activations import clip6, relu_or_relu6
from deeplab.model.backbone_spec import OUTPUT, AtrousSchedule, BackboneSpec
from deeplab.model.layers import NormSpec, conv_norm_act, keras_name, separable_conv_norm_act


@dataclasses.dataclass(frozen=True)
class Block:
    """`num_units` identical units under TF1 scope `scope`; only the last unit strides."""

    scope: str
    depths: tuple[int, int, int]
    skip: str  # "conv", "sum" or "none"
    num_units: int = 1
    stride: int = 1
    activation_inside: bool = False
    use_multi_grid: bool = False


def _entry(*strides_depths):
    return [Block(f"entry_flow/block{i}", (d, d, d), "conv", stride=s)
            for i, (s, d) in enumerate(strides_depths, 1)]


def _middle_exit(middle_units: int):
    return [
        Block("middle_flow/block1", (728, 728, 728), "sum", num_units=middle_units),
        Block("exit_flow/block1", (728, 1024, 1024), "conv", stride=2),
        Block("exit_flow/block2", (1536, 1536, 2048), "none", activation_inside=True,
              use_multi_grid=True),
    ]


BLOCKS = {
    "xception_41": _entry((2, 128), (2, 256), (2, 728)) + _middle_exit(8),
    "xception_65": _entry((2, 128), (2, 256), (2, 728)) + _middle_exit(16),
    "xception_71": _entry((2, 128), (1, 256), (2, 256), (1, 728), (2, 728)) + _middle_exit(16),
}

# Scope (below the variant) whose output feeds the decoder at stride 4.
DECODER_STRIDE = 4
DECODER_END_POINT = {
    "xception_41": "entry_flow/block2/unit_1/xception_module/separable_conv2_pointwise",
    "xception_65": "entry_flow/block2/unit_1/xception_module/separable_conv2_pointwise",
    "xception_71": "entry_flow/block3/unit_1/xception_module/separable_conv2_pointwise",
}

NORM_EPSILON = 1e-3
NORM_DECAY = 0.9997


def _xception_module(x, block: Block, scope: str, norm: NormSpec, stride: int, rate: int,
                     unit_rates, taps: dict, bounded: bool = False):
    """One unit: [B, H, W, C] -> [B, H/stride, W/stride, block.depths[-1]].

    taps: {pointwise scope: None} of outputs wanted un-activated; filled in with them.
    bounded: the original's `use_bounded_activation`: ReLU6 for ReLU, the separable convs'
    outputs (no activation otherwise) and both inputs of the residual add clipped to
    [-6, 6], a ReLU6 after the add, and TF 'SAME' padding for the strided separable conv.
    """
    relu = relu_or_relu6(bounded)
    linear = clip6 if bounded else None  # the separable convs' "no activation"
    residual = x
    inner = relu if block.activation_inside else linear
    for i, depth in enumerate(block.depths):
        conv_scope = f"{scope}/separable_conv{i + 1}"
        pointwise = f"{conv_scope}_pointwise"
        if not block.activation_inside and i == 0:  # the unit's input is the shortcut's too
            residual = _relu(bounded, f"{conv_scope}/pre_relu")(residual)
        # The ReLU before the next separable conv is this one's pointwise activation, which
        # the folded convolution fuses (relu6(clip6(x)) = relu6(x)); unless the output is
        # tapped before it.
        then_relu = not block.activation_inside and i < 2
        activation = relu if then_relu and pointwise not in taps else inner
        residual = separable_conv_norm_act(
            residual, depth, 3, conv_scope, norm, stride=stride if i == 2 else 1,
            rate=rate * unit_rates[i], depthwise_activation=inner, pointwise_activation=activation,
            explicit_padding=not bounded)
        if pointwise in taps:
            taps[pointwise] = residual
            if then_relu:
                next_scope = f"{scope}/separable_conv{i + 2}"
                residual = _relu(bounded, f"{next_scope}/pre_relu")(residual)
    if block.skip == "none":
        return residual
    if block.skip == "conv":
        shortcut = conv_norm_act(x, block.depths[-1], 1, f"{scope}/shortcut", norm,
                                 stride=stride, activation=linear)
    else:
        shortcut = x if not bounded else keras.layers.Activation(
            clip6, name=keras_name(f"{scope}/shortcut_clip"))(x)
    out = keras.layers.Add(name=keras_name(f"{scope}/add"))([residual, shortcut])
    return _relu(True, f"{scope}/relu6")(out) if bounded else out


def _relu(bounded: bool, scope: str) -> keras.layers.Layer:
    """A ReLU layer (ReLU6 when bounded) named after `scope`."""
    return keras.layers.ReLU(max_value=6.0 if bounded else None, name=keras_name(scope))


def build(images, options, norm: NormSpec) -> dict:
    """Xception feature extractor (see `backbone_spec` for the returned mapping).

    images: preprocessed [B, H, W, 3]. Returns {4: [B, H/4, W/4, 256 (728 for
    xception_71's block3)], OUTPUT: [B, H/OS, W/OS, 2048]}; sizes round up as in
    `conv2d_same`.
    """
    variant = options.model_variant
    multi_grid = options.multi_grid or (1, 1, 1)
    bounded = options.use_bounded_activation
    relu = relu_or_relu6(bounded)
    x = conv_norm_act(images, 32, 3, f"{variant}/entry_flow/conv1_1", norm, stride=2,
                      activation=relu)
    x = conv_norm_act(x, 64, 3, f"{variant}/entry_flow/conv1_2", norm, activation=relu)
    schedule = AtrousSchedule(options.output_stride, current_stride=2)  # the root halves
    decoder_tap = f"{variant}/{DECODER_END_POINT[variant]}"
    taps = {decoder_tap: None}
    for block in BLOCKS[variant]:
        unit_rates = multi_grid if block.use_multi_grid else (1, 1, 1)
        for u in range(block.num_units):
            stride, rate = schedule.step(block.stride if u == block.num_units - 1 else 1)
            scope = f"{variant}/{block.scope}/unit_{u + 1}/xception_module"
            x = _xception_module(x, block, scope, norm, stride, rate, unit_rates, taps,
                                 bounded)
    schedule.check(variant)
    return {DECODER_STRIDE: taps[decoder_tap], OUTPUT: x}


SPEC = BackboneSpec("xception", tuple(BLOCKS), build, NORM_EPSILON, NORM_DECAY,
                    options=("multi_grid",))
