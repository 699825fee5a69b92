"""The backbone contract: what a backbone module declares and returns.

A backbone module defines one `BackboneSpec` (conventionally `SPEC`) and is registered by one
line in `deeplab.model.backbones`. Its `build(images, options, norm)` returns the features
keyed by stride:

    {4: low_level_at_stride_4, ..., OUTPUT: deepest_features_at_output_stride}

where each int key is the input/feature size ratio of a decoder end point of the original
(the DeepLabv3+ decoder picks `options.decoder_output_stride` from it) and `OUTPUT` is the
map the head (ASPP or the Dense Prediction Cell) reads. Output stride and atrous rates are
applied through `AtrousSchedule`, the one place that turns a requested output stride into
per-layer strides and dilation rates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

OUTPUT = "out"  # key of the deepest features in a backbone's feature mapping

UNIT_RANGE = "unit_range"  # x * 2 / 255 - 1
SUBTRACT_MEAN = "subtract_mean"  # x - ImageNet mean RGB
MEAN_RGB = (123.15, 115.90, 103.06)
# The output strides DeepLab builds at; a family may accept fewer (BackboneSpec.output_strides)
OUTPUT_STRIDES = (8, 16, 32)


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """A family of backbones and everything the rest of the code needs to know about it.

    Attributes:
      name: family name, e.g. "xception".
      variants: the `model_variant` values it builds, e.g. ("xception_41", "xception_65").
      build: (images [B, H, W, 3] preprocessed float, options: ModelOptions, norm: NormSpec)
        -> {stride: tensor, ..., OUTPUT: tensor}; see the module docstring.
      norm_epsilon, norm_decay: BatchNorm epsilon and decay of the backbone's own layers
        (the head has its own); `norm` passed to `build` carries them.
      preprocessing: variant -> UNIT_RANGE or SUBTRACT_MEAN.
      output_strides: output strides the family can be built at.
      atrous: True when the output stride only turns strides into atrous rates (one set of
        weights serves every output stride); False when it selects another network (NAS).
      options: the ModelOptions fields only this family reads (its option group).
    """

    name: str
    variants: tuple[str, ...]
    build: Callable
    norm_epsilon: float
    norm_decay: float
    preprocessing: Callable[[str], str] = lambda variant: UNIT_RANGE
    output_strides: tuple[int, ...] = OUTPUT_STRIDES
    atrous: bool = True
    options: tuple[str, ...] = ()

    def check_output_stride(self, variant: str, output_stride: int) -> None:
        """ValueError naming the accepted strides unless `variant` builds at `output_stride`
        (the one check of output-stride validity; ModelOptions applies it to OUTPUT_STRIDES
        before the backbone is known)."""
        if output_stride not in self.output_strides:
            raise ValueError(f"{variant} builds at output_stride "
                             f"{', '.join(map(str, self.output_strides))}, not {output_stride}")

    def mean_pixel(self, variant: str) -> tuple[float, float, float]:
        """RGB value (0..255) that the variant's preprocessing maps to zero: what images are
        padded with."""
        if self.preprocessing(variant) == SUBTRACT_MEAN:
            return MEAN_RGB
        return (127.5, 127.5, 127.5)


class AtrousSchedule:
    """Output-stride bookkeeping shared by every backbone.

    Layers call `step(stride)` in network order with their nominal stride and receive the
    (stride, dilation rate) to build with: nominal strides apply until their product reaches
    the requested output stride; from then on each layer runs at stride 1 with the current
    rate, and a would-be stride multiplies the rate of the layers after it (the original's
    `stack_blocks_dense` / mobilenet `output_stride` rule).

    output_stride: requested input/feature size ratio; current_stride: the stride already
    applied before the first `step` (e.g. by a root not routed through the schedule).
    """

    def __init__(self, output_stride: int, current_stride: int = 1):
        self.output_stride = output_stride
        self.current_stride = current_stride
        self.rate = 1

    def step(self, stride: int) -> tuple[int, int]:
        """(stride, rate) for a layer whose nominal stride is `stride`."""
        if self.current_stride >= self.output_stride:
            layer_rate = self.rate
            self.rate *= stride
            return 1, layer_rate
        self.current_stride *= stride
        return stride, 1

    def check(self, variant: str) -> None:
        """Raises ValueError when the layers seen could not reach the output stride."""
        if self.current_stride != self.output_stride:
            raise ValueError(f"output_stride={self.output_stride} cannot be reached by "
                             f"{variant} (its strides multiply to {self.current_stride})")
