"""Typed model options: the one place that holds the network's settings and defaults.

Field names and defaults follow the original DeepLab's `ModelOptions` and its flags
(`../shared/reference-flags.md`). Entry points turn flags into a `ModelOptions`; library code
receives only this object. It serialises to JSON so a training run can save it beside its
checkpoints and later commands can read it back.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

XCEPTION_VARIANTS = ("xception_41", "xception_65", "xception_71")
RESNET_VARIANTS = ("resnet_v1_50", "resnet_v1_50_beta", "resnet_v1_101", "resnet_v1_101_beta")
MOBILENET_VARIANTS = ("mobilenet_v2",)
MODEL_VARIANTS = XCEPTION_VARIANTS + RESNET_VARIANTS + MOBILENET_VARIANTS
NORMALIZATIONS = ("batch", "group")


def _int_tuple(value) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """Settings of a DeepLabv3 / DeepLabv3+ network.

    Attributes:
      num_classes: number of output classes (logits channels).
      model_variant: backbone name, one of MODEL_VARIANTS.
      crop_size: (height, width) in pixels the model is trained or evaluated at, or None.
        Only image pooling with `image_pooling_crop_size` unset and a fixed crop uses it, and
        there it equals a global mean; kept for parity with the original.
      atrous_rates: ASPP dilation rates, e.g. (6, 12, 18) at output stride 16; None or ()
        gives ASPP with only image pooling and the 1x1 branch.
      output_stride: input size / backbone feature size: 8, 16 or 32.
      decoder_output_stride: stride of the DeepLabv3+ decoder (4), or None for no decoder.
      multi_grid: unit rates of the last ResNet block, e.g. (1, 2, 4); None means (1, 1, 1).
      depth_multiplier: MobileNetV2 width multiplier (1.0 or 0.5).
      add_image_level_feature: whether ASPP has the image pooling branch.
      image_pooling_crop_size: (h, w) whose feature size sets the pooling kernel; None pools
        the whole feature map (the original's behaviour at any fixed crop).
      image_pooling_stride: stride of that pooling.
      aspp_with_batch_norm: ASPP with normalised branches; False skips ASPP altogether and
        feeds the backbone features on (the original's behaviour).
      aspp_with_separable_conv: ASPP atrous branches as depthwise + pointwise.
      decoder_use_separable_conv: decoder convolutions as depthwise + pointwise.
      logits_kernel_size: kernel of the final classifier.
      aspp_convs_filters: channels of every ASPP branch.
      decoder_filters: channels of the decoder convolutions.
      batch_norm_decay: moving-average decay of ASPP / decoder BN (Keras `momentum`).
      normalization: "batch" (BatchNorm, as the original) or "group" (GroupNorm).
      group_norm_groups: groups for GroupNorm (channels that do not divide use the largest
        divisor below it).
      sync_batch_norm: BatchNorm statistics reduced over all replicas in training.
    """

    num_classes: int = 21
    model_variant: str = "mobilenet_v2"
    crop_size: tuple[int, int] | None = None
    atrous_rates: tuple[int, ...] | None = None
    output_stride: int = 16
    decoder_output_stride: int | None = None
    multi_grid: tuple[int, ...] | None = None
    depth_multiplier: float = 1.0
    add_image_level_feature: bool = True
    image_pooling_crop_size: tuple[int, int] | None = None
    image_pooling_stride: tuple[int, int] = (1, 1)
    aspp_with_batch_norm: bool = True
    aspp_with_separable_conv: bool = True
    decoder_use_separable_conv: bool = True
    logits_kernel_size: int = 1
    aspp_convs_filters: int = 256
    decoder_filters: int = 256
    batch_norm_decay: float = 0.9997
    normalization: str = "batch"
    group_norm_groups: int = 32
    sync_batch_norm: bool = False

    def __post_init__(self):
        # Normalise list-like inputs so equal options compare (and hash) equal.
        for name in ("crop_size", "atrous_rates", "multi_grid", "image_pooling_crop_size",
                     "image_pooling_stride"):
            object.__setattr__(self, name, _int_tuple(getattr(self, name)))
        if isinstance(self.decoder_output_stride, Sequence):
            stride = self.decoder_output_stride
            object.__setattr__(self, "decoder_output_stride", int(stride[0]) if stride else None)
        self.validate()

    def validate(self) -> None:
        """Raises ValueError naming the bad field."""
        if self.model_variant not in MODEL_VARIANTS:
            raise ValueError(
                f"model_variant={self.model_variant!r} is not one of {', '.join(MODEL_VARIANTS)}"
            )
        if self.output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride={self.output_stride} must be 8, 16 or 32")
        if self.decoder_output_stride not in (None, 4):
            raise ValueError(f"decoder_output_stride={self.decoder_output_stride} must be 4 "
                             "(the stride of every backbone's decoder end point) or unset")
        if self.num_classes < 1:
            raise ValueError(f"num_classes={self.num_classes} must be positive")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization={self.normalization!r} is not one of {NORMALIZATIONS}")
        if self.multi_grid is not None and len(self.multi_grid) != 3:
            raise ValueError(f"multi_grid={self.multi_grid} must have three entries")
        if self.crop_size is not None and len(self.crop_size) != 2:
            raise ValueError(f"crop_size={self.crop_size} must be (height, width)")

    @property
    def is_xception(self) -> bool:
        return self.model_variant in XCEPTION_VARIANTS

    @property
    def is_resnet(self) -> bool:
        return self.model_variant in RESNET_VARIANTS

    @property
    def is_mobilenet(self) -> bool:
        return self.model_variant in MOBILENET_VARIANTS

    def replace(self, **changes) -> ModelOptions:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> ModelOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model option(s): {', '.join(unknown)}")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelOptions:
        return cls.from_dict(json.loads(text))
