"""The Dense Prediction Cell (DPC): a searched multi-branch head used in place of ASPP.

Its architecture is a JSON list of branches, as the original's
`dense_prediction_cell_branch5_top1_cityscapes.json` (shipped in this package):
  {"kernel": 3, "rate": [rate_h, rate_w], "op": "conv", "input": -1 | index of a branch}
A 3x3 "conv" branch is a split separable conv (depthwise dilated by (rate_h, rate_w) *
16 / output_stride, SAME padding, BN + ReLU; 1x1 conv + BN + ReLU); a 1x1 one a conv + BN +
ReLU; "pyramid_pooling" branches average-pool a `grid_size` grid. Input -1 is the backbone
features. The branches are concatenated in order, dropout (keep 0.9) comes before the 1x1
`concat_projection` + BN + ReLU. TF1 scope: `meta_architecture/branch{i}`.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras

from deeplab.model.aspp import FixedImagePooling, scale_dimension
from deeplab.model.layers import (
    HEAD_SEPARABLE_STDDEVS,
    Dropout,
    NormSpec,
    ResizeLike,
    conv_norm_act,
    keras_name,
    separable_conv_norm_act,
)

SCOPE = "meta_architecture"
PACKAGED_DIR = os.path.join(os.path.dirname(__file__), "cells")
CITYSCAPES_CELL = "dense_prediction_cell_branch5_top1_cityscapes.json"
REDUCTION_SIZE = 256  # channels of every branch
CONCAT_CHANNELS = 256
DROPOUT_RATE = 0.1
OPS = ("conv", "pyramid_pooling")


@dataclasses.dataclass(frozen=True)
class Branch:
    """One DPC branch: op, kernel (int or (kh, kw)), rate (rate_h, rate_w), input branch
    (-1 = backbone features), grid_size (pyramid pooling only)."""

    op: str
    input: int
    kernel: int | tuple[int, int] = 3
    rate: tuple[int, int] = (1, 1)
    grid_size: tuple[int, int] | None = None


def _pair(value) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    values = tuple(int(v) for v in value)
    if len(values) != 2:
        raise ValueError(f"expected [height, width], got {list(values)}")
    return values


def normalize_config(config) -> tuple[Branch, ...]:
    """Branch dicts (the original's JSON) or Branches -> a tuple of Branch; ValueError names
    the bad branch."""
    branches = []
    for i, entry in enumerate(config):
        if isinstance(entry, Branch):
            branches.append(entry)
            continue
        try:
            op = str(entry["op"])
            if op not in OPS:
                raise ValueError(f"op {op!r} is not one of {', '.join(OPS)}")
            kernel = entry.get("kernel", 3)
            branch = Branch(
                op=op, input=int(entry["input"]),
                kernel=kernel if isinstance(kernel, int) else _pair(kernel),
                rate=_pair(entry.get("rate", 1)),
                grid_size=_pair(entry["grid_size"]) if entry.get("grid_size") else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"dense prediction cell branch {i} ({entry}): {exc}") from None
        if not -1 <= branch.input < i:
            raise ValueError(f"dense prediction cell branch {i}: input {branch.input} must be "
                             f"-1 (the features) or an earlier branch")
        branches.append(branch)
    return tuple(branches)


def load_config(path_or_name: str) -> tuple[Branch, ...]:
    """Reads a DPC JSON file: a path, or the name of a cell shipped in the package (e.g.
    CITYSCAPES_CELL, also as the original's `deeplab/core/<name>`)."""
    path = path_or_name
    if not os.path.isfile(path):
        packaged = os.path.join(PACKAGED_DIR, os.path.basename(path_or_name))
        if not os.path.isfile(packaged):
            shipped = ", ".join(sorted(os.listdir(PACKAGED_DIR)))
            raise ValueError(f"{path_or_name}: no such dense prediction cell file (nor a "
                             f"packaged one; shipped: {shipped})")
        path = packaged
    try:
        with open(path, encoding="utf-8") as f:
            return normalize_config(json.load(f))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the dense prediction cell ({exc})") from None


def _rate_multiplier(output_stride: int) -> int:
    """The cell was searched at output stride 16; rates scale by 16 / output_stride."""
    if output_stride > 16:
        raise ValueError(f"the dense prediction cell runs at output_stride 16 or 8, "
                         f"not {output_stride}")
    return 16 // output_stride


def _branch(x, branch: Branch, scope: str, options, norm: NormSpec):
    if branch.op == "pyramid_pooling":
        return _pyramid_pooling(x, branch, scope, options, norm)
    if branch.kernel in (1, (1, 1)):
        return conv_norm_act(x, REDUCTION_SIZE, 1, scope, norm)
    multiplier = _rate_multiplier(options.output_stride)
    rate = tuple(r * multiplier for r in branch.rate)
    return separable_conv_norm_act(x, REDUCTION_SIZE, branch.kernel, scope, norm, rate=rate,
                                   init_stddevs=HEAD_SEPARABLE_STDDEVS)


def _pyramid_pooling(x, branch: Branch, scope: str, options, norm: NormSpec):
    """Average pooling over a grid of the image-pooling crop (VALID), 1x1 conv, upsampled."""
    if options.image_pooling_crop_size is None:
        raise ValueError("a pyramid_pooling DPC branch needs image_pooling_crop_size")
    kernel = [scale_dimension(d, 1.0 / (options.output_stride * g))
              for d, g in zip(options.image_pooling_crop_size, branch.grid_size or (1, 1),
                                   strict=True)]
    pooled = FixedImagePooling(kernel, (1, 1), name=keras_name(f"{scope}/avg_pool"))(x)
    pooled = conv_norm_act(pooled, REDUCTION_SIZE, 1, scope, norm)
    return ResizeLike(name=keras_name(f"{scope}/resize"))(pooled, x)


def build(features, options, norm: NormSpec):
    """The cell: features [B, h, w, C] -> [B, h, w, CONCAT_CHANNELS]."""
    outputs = []
    for i, branch in enumerate(options.dense_prediction_cell_config):
        source = features if branch.input < 0 else outputs[branch.input]
        outputs.append(_branch(source, branch, f"{SCOPE}/branch{i}", options, norm))
    x = keras.layers.Concatenate(name=keras_name(f"{SCOPE}/concat"))(outputs)
    x = Dropout(DROPOUT_RATE, name=keras_name(f"{SCOPE}/concat_projection_dropout"))(x)
    return conv_norm_act(x, CONCAT_CHANNELS, 1, f"{SCOPE}/concat_projection", norm)
