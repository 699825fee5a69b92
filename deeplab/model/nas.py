"""NAS backbones of the original: PNASNet-5 cells (`nas_pnasnet`) and Auto-DeepLab
(`nas_hnasnet`), as DeepLab builds them.

Stem: `conv0` 3x3/2 64 + BN + ReLU, `conv1` 3x3 64 + BN (kept, before its ReLU, as the first
"previous cell" input), ReLU, `conv2` 3x3/2 128 + BN (the second one, and the `Stem` end
point at stride 4). Stride-2 convolutions pad explicitly (`conv2d_same`).

Then 12 cells, each on a level l of the network (stride 4 * 2^l, F * 2^l channels per
branch, F = `nas_stem_output_num_conv_filters`): moving one level down, the cell's ops that
read its two inputs stride 2; moving one level up, the input is first upsampled (bilinear,
align_corners) to (h - 1) * 2 + 1. A cell: its input -> ReLU -> 1x1 conv -> BN; the cell
before the previous one -> resized (bilinear, align_corners) to the input's size when the
strides differ -> ReLU -> 1x1 conv -> BN when its channels differ; five combinations
`op(left) + op(right)` of earlier states; the output concatenates the five combinations
(5 F 2^l channels). A ReLU follows the last cell.

BatchNorms are named apart from their convolutions (`conv0` / `conv0_bn`,
`.../separable_5x5_1` / `.../bn_sep_5x5_1`) and use epsilon 1e-3; the separable convs keep
both kernels in one scope (`depthwise_weights`, `pointwise_weights`), no BN between them.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from deeplab.model.aspp import scale_dimension
from deeplab.model.backbone_spec import OUTPUT, BackboneSpec
from deeplab.model.folded_conv import Conv2D, fold_batch_norm
from deeplab.model.layer_walk import all_layers
from deeplab.model.layers import (
    NormSpec,
    ResizeLike,
    fixed_padding,
    keras_name,
    norm_layer,
    resize_bilinear_align_corners,
)

NORM_EPSILON = 1e-3
NORM_DECAY = 0.9997
FILTER_SCALING_RATE = 2
USED_STATES = (1, 1, 0, 0, 0, 0, 0)  # the two inputs are never part of the output


@dataclasses.dataclass(frozen=True)
class Genotype:
    """A cell: operations[2i] (left) and [2i + 1] (right) of comb_iter_i read the states
    hidden_indices[2i] and [2i + 1] (0: the cell's input, 1: the cell before, 2+: combs)."""

    operations: tuple[str, ...]
    hidden_indices: tuple[int, ...]


PNAS_CELL = Genotype(
    ("separable_5x5_2", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3", "separable_5x5_2",
     "separable_3x3_2", "separable_3x3_2", "max_pool_3x3", "separable_3x3_2", "none"),
    (1, 1, 0, 0, 0, 0, 4, 0, 1, 0))
HNAS_CELL = Genotype(
    ("atrous_5x5", "separable_3x3_2", "separable_3x3_2", "atrous_3x3", "separable_3x3_2",
     "separable_3x3_2", "separable_5x5_2", "separable_5x5_2", "separable_5x5_2", "atrous_5x5"),
    (1, 0, 1, 0, 3, 1, 4, 2, 3, 5))

# Level of each cell (stride 4 * 2^level). PNASNet's path follows the output stride;
# Auto-DeepLab's searched path always ends at level 1 (stride 8).
PNAS_PATHS = {8: (1,) * 12, 16: (1,) * 4 + (2,) * 8, 32: (1,) * 4 + (2,) * 4 + (3,) * 4}
HNAS_PATH = (0, 0, 0, 1, 2, 1, 2, 2, 3, 3, 2, 1)
# The classification head's widths when it brings the features down to stride 32.
HEAD_FILTERS = {8: 256, 16: 512, 32: 1024}
HEAD_OUTPUT_FILTERS = 2048


def _bn(x, conv, scope: str, norm: NormSpec):
    """BatchNorm in TF1 scope `scope` after the convolution layer `conv` (folded into it
    unless it is a separable conv, which does not fold)."""
    normed = norm_layer(norm, scope, x.shape[-1], norm_scope=scope)
    y = normed(x)
    if conv is not None:
        fold_batch_norm(conv, normed)
    return y


def _conv_bn(x, filters: int, kernel: int, scope: str, bn_scope: str, norm: NormSpec,
             stride: int = 1, rate: int = 1):
    """`conv2d_same` (explicit padding when strided) without bias, then BN: [B, H, W, C] ->
    [B, ceil(H / stride), ceil(W / stride), filters]."""
    padding = "same"
    if stride > 1:
        x = fixed_padding(x, kernel, rate, name=keras_name(f"{scope}/pad"))
        padding = "valid"
    conv = Conv2D(filters, kernel, strides=stride, dilation_rate=rate, padding=padding,
                  use_bias=False, name=keras_name(scope))
    return _bn(conv(x), conv, bn_scope, norm)


def _relu(x, scope: str):
    return keras.layers.ReLU(name=keras_name(scope))(x)


@keras.saving.register_keras_serializable(package="deeplab")
class DropPath(keras.layers.Layer):
    """Drops the whole path of a sample while training (the original's `_apply_drop_path`):
    x * floor(keep + U[0, 1)) / keep per sample, with keep = 1 - progress * (1 - keep_prob),
    keep_prob already scaled to the cell's depth and progress = min(1, step / total steps)
    (the original's ramp), read from the schedule `attach_drop_path_schedule` gives (without
    one: progress 1). Identity at inference or with keep_prob 1. No weights."""

    def __init__(self, keep_prob: float, **kwargs):
        super().__init__(**kwargs)
        self.keep_prob = float(keep_prob)
        self._schedule = []  # [callable -> float32 progress]; a list so nothing is tracked

    def progress(self):
        """Training progress 0..1 (float32 tensor): the attached schedule's, else 1."""
        return self._schedule[0]() if self._schedule else tf.constant(1.0)

    def call(self, x, training=None):
        if not training or self.keep_prob >= 1.0:
            return x
        keep = 1.0 - self.progress() * (1.0 - self.keep_prob)
        noise = tf.random.uniform([tf.shape(x)[0], 1, 1, 1], dtype=tf.float32)
        mask = tf.floor(keep + noise)
        return x * tf.cast(mask / keep, x.dtype)

    def get_config(self):
        return {**super().get_config(), "keep_prob": self.keep_prob}


def attach_drop_path_schedule(model: keras.Model, step, total_steps: int) -> None:
    """Ramps every DropPath of `model` in over training, as the original: progress =
    min(1, step / total_steps). step: a variable read at each call (e.g. the optimizer's
    iterations); a model without DropPath is left alone."""
    def progress():
        return tf.minimum(1.0, tf.cast(step, tf.float32) / float(max(1, total_steps)))

    for layer in all_layers(model):
        if isinstance(layer, DropPath):
            layer._schedule[:] = [progress]


@dataclasses.dataclass
class _Cell:
    """What one cell builds with: its TF1 scope, branch width, stride for ops on its inputs,
    normalisation and drop-path keep probability."""

    scope: str
    filters: int
    stride: int
    norm: NormSpec
    keep_prob: float


def _separable(x, op: str, cell: _Cell, scope: str, stride: int):
    """separable_KxK_n: n x (ReLU -> depthwise KxK + pointwise 1x1 -> BN)."""
    kernel, layers = int(op.split("x")[0][-1]), int(op.split("_")[-1])
    for n in range(1, layers + 1):
        x = _relu(x, f"{scope}/separable_{kernel}x{kernel}_{n}/relu")
        padding = "same"
        if stride > 1:
            x = fixed_padding(x, kernel, name=keras_name(f"{scope}/separable_{kernel}x"
                                                         f"{kernel}_{n}/pad"))
            padding = "valid"
        conv = keras.layers.SeparableConv2D(cell.filters, kernel, strides=stride,
                                            padding=padding, use_bias=False,
                                            name=keras_name(f"{scope}/separable_{kernel}x"
                                                            f"{kernel}_{n}"))
        x = _bn(conv(x), None, f"{scope}/bn_sep_{kernel}x{kernel}_{n}", cell.norm)
        stride = 1
    return x


@keras.saving.register_keras_serializable(package="deeplab")
class _HalfSize(keras.layers.Layer):
    """Bilinear (align_corners) resize to scale_dimension(d, 0.5) = (d - 1) // 2 + 1."""

    def call(self, x):
        size = (tf.shape(x)[1:3] - 1) // 2 + 1
        return resize_bilinear_align_corners(x, size)

    def compute_output_shape(self, shape):
        half = [None if d is None else scale_dimension(d, 0.5) for d in shape[1:3]]
        return (shape[0], *half, shape[3])


def _operation(x, op: str, cell: _Cell, scope: str, stride: int):
    """One op of a comb on state x: [B, H, W, C] -> [B, H / stride, W / stride, filters]."""
    if op.startswith("separable"):
        x = _separable(x, op, cell, scope, stride)
    elif op.startswith("atrous"):
        kernel = int(op.split("x")[0][-1])
        x = _relu(x, f"{scope}/atrous_{kernel}x{kernel}/relu")
        if stride == 2:  # downsample bilinearly, then an undilated conv
            x = _HalfSize(name=keras_name(f"{scope}/atrous_{kernel}x{kernel}/resize"))(x)
        x = _conv_bn(x, cell.filters, kernel, f"{scope}/atrous_{kernel}x{kernel}",
                     f"{scope}/bn_atr_{kernel}x{kernel}", cell.norm,
                     rate=1 if stride == 2 else 2)
    elif op == "none":
        if stride > 1 or x.shape[-1] != cell.filters:
            x = _relu(x, f"{scope}/1x1/relu")
            x = _conv_bn(x, cell.filters, 1, f"{scope}/1x1", f"{scope}/bn_1", cell.norm,
                         stride=stride)
        return x  # no drop path on the identity
    elif op == "max_pool_3x3":
        x = keras.layers.MaxPooling2D(3, strides=stride, padding="same",
                                      name=keras_name(f"{scope}/max_pool"))(x)
        if x.shape[-1] != cell.filters:
            x = _conv_bn(x, cell.filters, 1, f"{scope}/1x1", f"{scope}/bn_1", cell.norm)
    else:
        raise ValueError(f"unknown NAS operation {op!r}")
    if cell.keep_prob < 1.0:
        x = DropPath(cell.keep_prob, name=keras_name(f"{scope}/drop_path"))(x)
    return x


def _cell(net, prev, same_stride: bool, genotype: Genotype, cell: _Cell):
    """One cell on its input `net` and the cell before `prev`: -> [B, h, w, 5 * filters]."""
    scope = cell.scope
    if not same_stride:
        prev = ResizeLike(name=keras_name(f"{scope}/prev_resize"))(prev, net)
    if prev.shape[-1] != cell.filters:
        prev = _relu(prev, f"{scope}/prev_1x1/relu")
        prev = _conv_bn(prev, cell.filters, 1, f"{scope}/prev_1x1", f"{scope}/prev_bn",
                        cell.norm)
    net = _relu(net, f"{scope}/1x1/relu")
    states = [_conv_bn(net, cell.filters, 1, f"{scope}/1x1", f"{scope}/beginning_bn",
                       cell.norm), prev]
    for i in range(len(genotype.operations) // 2):
        pair = []
        for j, side in ((2 * i, "left"), (2 * i + 1, "right")):
            index = genotype.hidden_indices[j]
            pair.append(_operation(states[index], genotype.operations[j], cell,
                                   f"{scope}/comb_iter_{i}/{side}",
                                   cell.stride if index < 2 else 1))
        states.append(keras.layers.Add(name=keras_name(f"{scope}/comb_iter_{i}/combine"))(pair))
    unused = [s for s, used in zip(states, USED_STATES, strict=True) if not used]
    return keras.layers.Concatenate(name=keras_name(f"{scope}/cell_output"))(unused)


def _stem(images, scope: str, norm: NormSpec):
    """-> (conv1 BN output [stride 2, 64], conv2 BN output [stride 4, 128])."""
    x = _conv_bn(images, 64, 3, f"{scope}/conv0", f"{scope}/conv0_bn", norm, stride=2)
    x = _relu(x, f"{scope}/conv0/relu")
    conv1 = _conv_bn(x, 64, 3, f"{scope}/conv1", f"{scope}/conv1_bn", norm)
    x = _relu(conv1, f"{scope}/conv1/relu")
    conv2 = _conv_bn(x, 128, 3, f"{scope}/conv2", f"{scope}/conv2_bn", norm, stride=2)
    return conv1, conv2


@keras.saving.register_keras_serializable(package="deeplab")
class _Upsample2x(keras.layers.Layer):
    """Bilinear (align_corners) resize to scale_dimension(d, 2) = (d - 1) * 2 + 1."""

    def call(self, x):
        return resize_bilinear_align_corners(x, (tf.shape(x)[1:3] - 1) * 2 + 1)

    def compute_output_shape(self, shape):
        return (shape[0], *[None if d is None else (d - 1) * 2 + 1 for d in shape[1:3]],
                shape[3])


def _classification_head(x, scope: str, level: int, output_stride: int, norm: NormSpec):
    """The original's `nas_use_classification_head`: strided (or, past `output_stride`,
    dilated) 3x3 convs down to nominal stride 32 (256 / 512 / 1024 ch), then 1x1 2048; each
    + BN + ReLU. Returns [B, H / output_stride, W / output_stride, 2048]."""
    scale = 2 + level
    if output_stride % 2 ** scale:
        raise ValueError(f"output_stride={output_stride} must be a multiple of the NAS "
                         f"backbone's stride {2 ** scale}")
    remaining, rate = output_stride // 2 ** scale, 1
    for i in range(5 - scale):
        target = 2 ** (scale + 1 + i)
        stride = 1
        if remaining != 1:
            stride, remaining = 2, remaining // 2
        else:
            rate *= 2
        x = _conv_bn(x, HEAD_FILTERS[target], 3, f"{scope}/downsample_os{target}_conv",
                     f"{scope}/downsample_os{target}_bn", norm, stride=stride, rate=rate)
        x = _relu(x, f"{scope}/downsample_os{target}_conv/relu")
    x = _conv_bn(x, HEAD_OUTPUT_FILTERS, 1, f"{scope}/classification_head_conv",
                 f"{scope}/classification_head_bn", norm)
    return _relu(x, f"{scope}/classification_head_conv/relu")


def _path(options) -> tuple[int, ...]:
    return HNAS_PATH if options.model_variant == "nas_hnasnet" else \
        PNAS_PATHS[options.output_stride]


def build(images, options, norm: NormSpec) -> dict:
    """NAS feature extractor (see `backbone_spec` for the returned mapping).

    images: preprocessed [B, H, W, 3]. Returns {4: stride-4 decoder feature (pnasnet: the
    stem's conv2 BN output, 128 ch; hnasnet: cell_2's output, 5F ch), OUTPUT: ReLU of the
    last cell, [B, H / OS, W / OS, 5 F 2^level] (hnasnet: OS 8), or the classification
    head's 2048 channels}.
    """
    scope = options.model_variant.removeprefix("nas_")
    genotype = HNAS_CELL if scope == "hnasnet" else PNAS_CELL
    path = _path(options)
    remove_os32 = options.nas_remove_os32_stride
    if remove_os32 and 3 in path and options.decoder_output_stride is None:
        raise ValueError("nas_remove_os32_stride keeps the last level at stride 16: it needs "
                         "a decoder (--decoder_output_stride)")
    conv1, stem = _stem(images, scope, norm)
    outputs = [(conv1, 2), (stem, 4)]  # (tensor, stride) of every cell output so far
    features = {4: stem}
    net, level, scaling = stem, 0, 1.0
    for n, target in enumerate(path):
        in_stride, stride = outputs[-1][1], 1
        if target == level + 1:
            stride = 1 if target == 3 and remove_os32 else 2
            scaling *= FILTER_SCALING_RATE
        elif target == level - 1:
            if not (level == 3 and remove_os32):
                net = _Upsample2x(name=keras_name(f"{scope}/cell_{n}/upsample"))(net)
                in_stride //= 2
            scaling /= FILTER_SCALING_RATE
        level = target
        prev, prev_stride = outputs[-2]
        keep = 1.0 - (n + 1) / len(path) * (1.0 - options.drop_path_keep_prob)
        filters = int(options.nas_stem_output_num_conv_filters * scaling)
        cell = _Cell(f"{scope}/cell_{n}", filters, stride, norm, keep)
        net = _cell(net, prev, prev_stride == in_stride, genotype, cell)
        outputs.append((net, in_stride * stride))
        if n == 2 and scope == "hnasnet":
            features[4] = net
    x = _relu(net, f"{scope}/relu")
    if options.nas_use_classification_head:
        x = _classification_head(x, scope, path[-1], options.output_stride, norm)
    return {**features, OUTPUT: x}


OPTIONS = ("nas_stem_output_num_conv_filters", "nas_use_classification_head",
           "nas_remove_os32_stride", "drop_path_keep_prob")
SPEC = BackboneSpec("pnasnet", ("nas_pnasnet",), build, NORM_EPSILON, NORM_DECAY, atrous=False,
                    options=OPTIONS)
# Auto-DeepLab's searched path ends at stride 8 whatever the requested output stride (which
# the original uses only to size image pooling), so it builds at output stride 8 only.
HNAS_SPEC = BackboneSpec("hnasnet", ("nas_hnasnet",), build, NORM_EPSILON, NORM_DECAY,
                         output_strides=(8,), atrous=False, options=OPTIONS)
