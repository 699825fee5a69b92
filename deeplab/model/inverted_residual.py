"""The MobileNet inverted-residual block (the original's `conv_blocks.expanded_conv`).

One block, scope S (`.../expanded_conv_N`), maps [B, H, W, C_in] to [B, H/s, W/s, depth]:

    S/expand      1x1 conv + BN + act to `inner` channels, left out when inner <= C_in;
                  in a *fused* block a k x k conv with the block's stride instead (EdgeTPU)
    S/depthwise   k x k depthwise conv + BN + act with the block's stride and rate
                  (absent in a fused block); its output is the `depthwise_output` end point
    S/squeeze_excite  optional gate on the depthwise output (MobileNetV3), see below
    S/project     1x1 conv + BN, linear
    S/add         residual sum when allowed, the stride is 1 and C_in == depth

with inner = make_divisible(C_in * expansion, expansion_divisor) of the *actual* input depth.
All convolutions use TF 'SAME' padding, as mobilenet does without `use_explicit_padding`.

Squeeze-excite (`S/squeeze_excite`): mean over H and W, 1x1 conv `Conv` with bias and no
norm to make_divisible(C / 4, 8) channels + ReLU, 1x1 conv `Conv_1` with bias back to C +
hard-sigmoid (the 0.16667 gate), multiplied into its input.

`mobilenet_base` builds a whole network of such blocks (the original's `mobilenet_base`):
a 3x3 stem conv, the blocks, an optional final 1x1 conv, with output stride and atrous
rates from `AtrousSchedule`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from deeplab.model.activations import hard_sigmoid
from deeplab.model.backbone_spec import OUTPUT, AtrousSchedule
from deeplab.model.layers import (
    GlobalMeanPool,
    NormSpec,
    conv_norm_act,
    depthwise_norm_act,
    keras_name,
)

SQUEEZE_FACTOR = 4
SQUEEZE_DIVISOR = 8


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Rounds `value` to the nearest multiple of `divisor` (halves up), at least
    `min_value` (default `divisor`) and never more than 10 % below `value`."""
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


@dataclasses.dataclass(frozen=True)
class InvertedResidual:
    """One `expanded_conv` as the original's conv_defs declare it.

    depth: output channels before the depth multiplier; expansion: factor on the actual input
    depth; kernel: depthwise (or fused expand) kernel; stride: nominal stride; activation:
    of the expand and depthwise convs (a Keras name or a function); squeeze_excite: gate the
    depthwise output; fused: the expand is a `kernel` x `kernel` conv carrying the stride and
    there is no depthwise; residual: False turns the residual sum off even where it would fit.
    """

    depth: int
    expansion: float = 6
    kernel: int = 3
    stride: int = 1
    activation: object = "relu"
    squeeze_excite: bool = False
    fused: bool = False
    residual: bool = True
    expansion_divisor: int = 8


def squeeze_excite(x, scope: str):
    """`x` [B, H, W, C] gated per channel by `scope/squeeze_excite` (see module docstring)."""
    channels = x.shape[-1]
    se_scope = f"{scope}/squeeze_excite"
    squeezed = GlobalMeanPool(name=keras_name(f"{se_scope}/mean"))(x)
    squeezed = conv_norm_act(squeezed, make_divisible(channels / SQUEEZE_FACTOR, SQUEEZE_DIVISOR),
                             1, f"{se_scope}/Conv", None, activation="relu")
    gate = conv_norm_act(squeezed, channels, 1, f"{se_scope}/Conv_1", None,
                         activation=hard_sigmoid)
    return keras.layers.Multiply(name=keras_name(f"{se_scope}/mul"))([x, gate])


def inverted_residual(x, block: InvertedResidual, depth: int, scope: str, norm: NormSpec,
                      stride: int = 1, rate: int = 1):
    """One block: x [B, H, W, C_in] -> (output [B, ceil(H/stride), ceil(W/stride), depth],
    depthwise output [B, ceil(H/stride), ceil(W/stride), inner] or None in a fused block).

    depth: actual output channels (the multiplier already applied); stride, rate: as the
    output-stride schedule gives them for this block.
    """
    inputs = x
    in_depth = x.shape[-1]
    inner = make_divisible(in_depth * block.expansion, block.expansion_divisor)
    depthwise_output = None
    if block.fused:
        if inner > in_depth:
            x = conv_norm_act(x, inner, block.kernel, f"{scope}/expand", norm, stride=stride,
                              rate=rate, activation=block.activation, explicit_padding=False)
        elif stride != 1:
            raise ValueError(f"{scope}: a fused block without expansion cannot stride")
    else:
        if inner > in_depth:
            x = conv_norm_act(x, inner, 1, f"{scope}/expand", norm, activation=block.activation)
        x = depthwise_norm_act(x, block.kernel, f"{scope}/depthwise", norm, stride=stride,
                               rate=rate, activation=block.activation, explicit_padding=False)
        depthwise_output = x
    if block.squeeze_excite:
        x = squeeze_excite(x, scope)
    x = conv_norm_act(x, depth, 1, f"{scope}/project", norm, activation=None)
    if block.residual and stride == 1 and depth == in_depth:
        x = keras.layers.Add(name=keras_name(f"{scope}/add"))([x, inputs])
    return x, depthwise_output


@dataclasses.dataclass(frozen=True)
class MobileNetDef:
    """A MobileNet as its conv_defs spec lists it (layer_1 = stem, layer_2... = blocks).

    scope: variable scope (`MobilenetV3`); stem_depth / stem_activation: the 3x3 stride-2
    `Conv`; blocks: the `expanded_conv`s; final_depth / final_activation: the 1x1 `Conv_1`
    after them (None: no such conv); decoder_end_points: {stride: "layer_N/depthwise_output"},
    the original's `networks_to_feature_maps` entry.
    """

    scope: str
    stem_depth: int
    stem_activation: object
    blocks: tuple[InvertedResidual, ...]
    final_depth: int | None = None
    final_activation: object = None
    decoder_end_points: dict = dataclasses.field(default_factory=dict)

    def block_scope(self, index: int) -> str:
        """TF1 scope of block `index` (0-based): expanded_conv, expanded_conv_1, ..."""
        return f"{self.scope}/expanded_conv" + (f"_{index}" if index else "")


STEM_STRIDE = 2


def mobilenet_base(images, net: MobileNetDef, output_stride: int, norm: NormSpec,
                   scaled_depth: Callable[[int], int], variant: str) -> dict:
    """The network `net` on preprocessed images [B, H, W, 3].

    scaled_depth: nominal depth -> actual channels (the depth multiplier rule). Returns
    {stride: end point at that stride, for every decoder end point with stride <=
    output_stride, ..., OUTPUT: [B, ceil(H/OS), ceil(W/OS), last depth]} (`backbone_spec`).
    Once the output stride is reached a would-be stride keeps the current rate and doubles
    the rate of the layers after it.
    """
    schedule = AtrousSchedule(output_stride)
    stride, rate = schedule.step(STEM_STRIDE)
    x = conv_norm_act(images, scaled_depth(net.stem_depth), 3, f"{net.scope}/Conv", norm,
                      stride=stride, rate=rate, activation=net.stem_activation,
                      explicit_padding=False)
    end_points = {"layer_1": x}
    for i, block in enumerate(net.blocks):
        stride, rate = schedule.step(block.stride)
        x, depthwise = inverted_residual(x, block, scaled_depth(block.depth),
                                         net.block_scope(i), norm, stride, rate)
        end_points[f"layer_{i + 2}"] = x
        end_points[f"layer_{i + 2}/depthwise_output"] = depthwise
    if net.final_depth is not None:
        x = conv_norm_act(x, scaled_depth(net.final_depth), 1, f"{net.scope}/Conv_1", norm,
                          activation=net.final_activation)
    schedule.check(variant)
    features = {s: end_points[name] for s, name in net.decoder_end_points.items()
                if s <= output_stride}
    return {**features, OUTPUT: x}
