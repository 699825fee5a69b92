"""Typed model options: the one place that holds the network's settings and defaults.

Field names and defaults follow the original DeepLab's `ModelOptions` and its flags
(`../shared/reference-flags.md`). Entry points turn flags into a `ModelOptions`; library code
receives only this object. It serialises to JSON so a training run can save it beside its
checkpoints and later commands can read it back.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence

NORMALIZATIONS = ("batch", "group")
# Fields earlier runs saved that no longer change the network (they moved to the options that
# use them: the crop to InputOptions / ExportOptions, BatchNorm sync to TrainOptions); read
# and dropped so those runs keep loading.
LEGACY_FIELDS = ("crop_size", "sync_batch_norm")
# Fields earlier runs saved under another name: {old: new}. Our batch_norm_decay set the
# head's BatchNorm decay; the original's flag of that name does not (see head_norm).
RENAMED_FIELDS = {"batch_norm_decay": "head_batch_norm_decay"}


def _int_tuple(value) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)


def model_variants() -> tuple[str, ...]:
    """Every registered `model_variant`: the backbone registry's when it is loaded, else
    its names as remembered by deeplab.utils.names_cache (the registry imports Keras)."""
    registry = sys.modules.get("deeplab.model.backbones")
    if registry is not None:
        return registry.MODEL_VARIANTS
    from deeplab.utils.names_cache import cached

    return cached("model_variants", _registered_variants)


def _registered_variants() -> tuple[str, ...]:
    from deeplab.model.backbones import MODEL_VARIANTS

    return MODEL_VARIANTS


# predict: images with more pixels run as windows (about 2048 x 2048: whole Cityscapes frames
# still run whole); here, not in deeplab.model.predict, so flags can use it without TensorFlow
DEFAULT_MAX_PIXELS = 2048 * 2048


def multi_grid_length(model_variant: str) -> int:
    """Entries of `multi_grid`: one per unit of the last block (2 for ResNet-18, else 3)."""
    return 2 if model_variant.startswith("resnet_v1_18") else 3


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """Settings that change the DeepLabv3 / DeepLabv3+ network, and nothing else.

    Attributes:
      num_classes: number of output classes (logits channels).
      model_variant: backbone name, one of `model_variants()`.
      atrous_rates: ASPP dilation rates, e.g. (6, 12, 18) at output stride 16; None or ()
        gives ASPP with only image pooling and the 1x1 branch.
      output_stride: input size / backbone feature size: 8, 16 or 32.
      decoder_output_stride: stride of the decoder (4; 8 for MobileNetV3), or None for no
        decoder; must be a decoder end point of the backbone.
      multi_grid: unit rates of the last ResNet block, e.g. (1, 2, 4) (two entries for
        ResNet-18); None means all 1.
      depth_multiplier: MobileNet width multiplier (e.g. 1.0, 0.75, 0.5).
      divisible_by: MobileNetV2 channel counts are rounded to multiples of this; None is
        the original's default (8 at depth_multiplier 1.0, else 1).
      add_image_level_feature: whether ASPP has the image pooling branch.
      image_pooling_crop_size: (h, w) whose feature size sets the pooling kernel; None pools
        the whole feature map (the original's behaviour at any fixed crop).
      image_pooling_stride: stride of that pooling.
      aspp_with_batch_norm: ASPP with normalised branches; False skips ASPP altogether and
        feeds the backbone features on (the original's behaviour).
      aspp_with_separable_conv: ASPP atrous branches as depthwise + pointwise.
      aspp_with_concat_projection: project the concatenated ASPP branches with a 1x1 conv.
      aspp_with_squeeze_and_excitation: the image-pooling branch gates the others
        (multiplies them) instead of being concatenated; its conv has a bias and no BN.
      image_se_uses_qsigmoid: that gate is `hard_sigmoid` (else the logistic sigmoid).
      dense_prediction_cell_config: the Dense Prediction Cell's branches (the original's
        JSON: dicts with kernel, rate [h, w], op, input), replacing ASPP; None for ASPP.
      decoder_use_separable_conv: decoder convolutions as depthwise + pointwise.
      decoder_use_sum_merge: the decoder sums a 1x1/3x3 conv of the upsampled features and
        the projected low-level map instead of concatenating them.
      decoder_output_is_logits: the decoder's output is the logits (1x1 convs with biases,
        no BN or activation, `decoder_filters` = classes); no `logits/semantic` layer.
      logits_kernel_size: kernel of the final classifier.
      aspp_convs_filters: channels of every ASPP branch.
      decoder_filters: channels of the decoder convolutions.
      head_batch_norm_decay: moving-average decay of the ASPP / DPC / decoder BatchNorms
        (Keras `momentum`); the original fixes it at 0.9997.
      use_bounded_activation: ReLU6 instead of ReLU in ASPP (not image pooling), the decoder
        and Xception, whose separable convs and residual adds are also clipped to [-6, 6]
        (the original's choice for quantised inference; other backbones are unchanged).
      prediction_with_upsampled_logits: labels from the logits upsampled to the image
        (bilinear); False takes the argmax at the logits' stride and upsamples the labels
        (nearest neighbour, align_corners), as the original's `predict_labels`; single scale
        without flipping only (multi-scale always upsamples logits, as the original).
      nas_stem_output_num_conv_filters: NAS backbones' branch width F at stride 4 (the cells
        at stride 4 * 2^l use F * 2^l).
      nas_use_classification_head: NAS backbones end with the original's classification
        head (3x3 convs down to stride 32, dilated past output_stride, then 1x1 2048).
      nas_remove_os32_stride: NAS cells of the stride-32 level run at stride 16.
      drop_path_keep_prob: NAS drop path while training: the last cell keeps each path with
        this probability, earlier ones proportionally more (1.0: off; inference: off).
      quantize_delay_step: quantization-aware training (`deeplab.model.quantize`): -1 off;
        N >= 0 fake-quantises the convolutions (weights per channel, activations per
        tensor) from training step N on, and always in evaluation and export.
      normalization: "batch" (BatchNorm, as the original) or "group" (GroupNorm).
      group_norm_groups: groups for GroupNorm (channels that do not divide use the largest
        divisor below it).
    """

    num_classes: int = 21
    model_variant: str = "mobilenet_v2"
    atrous_rates: tuple[int, ...] | None = None
    output_stride: int = 16
    decoder_output_stride: int | None = None
    multi_grid: tuple[int, ...] | None = None
    depth_multiplier: float = 1.0
    divisible_by: int | None = None
    add_image_level_feature: bool = True
    image_pooling_crop_size: tuple[int, int] | None = None
    image_pooling_stride: tuple[int, int] = (1, 1)
    aspp_with_batch_norm: bool = True
    aspp_with_separable_conv: bool = True
    aspp_with_concat_projection: bool = True
    aspp_with_squeeze_and_excitation: bool = False
    image_se_uses_qsigmoid: bool = False
    dense_prediction_cell_config: tuple | None = None
    decoder_use_separable_conv: bool = True
    decoder_use_sum_merge: bool = False
    decoder_output_is_logits: bool = False
    logits_kernel_size: int = 1
    aspp_convs_filters: int = 256
    decoder_filters: int = 256
    head_batch_norm_decay: float = 0.9997
    use_bounded_activation: bool = False
    prediction_with_upsampled_logits: bool = True
    nas_stem_output_num_conv_filters: int = 20
    nas_use_classification_head: bool = False
    nas_remove_os32_stride: bool = False
    drop_path_keep_prob: float = 1.0
    quantize_delay_step: int = -1
    normalization: str = "batch"
    group_norm_groups: int = 32

    def __post_init__(self):
        # Normalise list-like inputs so equal options compare (and hash) equal.
        for name in ("atrous_rates", "multi_grid", "image_pooling_crop_size",
                     "image_pooling_stride"):
            object.__setattr__(self, name, _int_tuple(getattr(self, name)))
        if isinstance(self.decoder_output_stride, Sequence):
            stride = self.decoder_output_stride
            object.__setattr__(self, "decoder_output_stride", int(stride[0]) if stride else None)
        if self.dense_prediction_cell_config is not None:
            from deeplab.model.dense_prediction_cell import normalize_config

            object.__setattr__(self, "dense_prediction_cell_config",
                               normalize_config(self.dense_prediction_cell_config) or None)
        self.validate()

    def validate(self) -> None:
        """Raises ValueError naming the bad field."""
        variants = model_variants()
        if self.model_variant not in variants:
            raise ValueError(
                f"model_variant={self.model_variant!r} is not one of {', '.join(variants)}")
        if self.output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride={self.output_stride} must be 8, 16 or 32")
        if self.decoder_output_stride is not None and self.decoder_output_stride < 1:
            raise ValueError(f"decoder_output_stride={self.decoder_output_stride} must be "
                             "positive or unset")
        if self.divisible_by is not None and (self.divisible_by < 1
                                              or self.model_variant != "mobilenet_v2"):
            raise ValueError(f"divisible_by={self.divisible_by}: a positive channel divisor "
                             "of mobilenet_v2 (other variants have none)")
        if self.num_classes < 1:
            raise ValueError(f"num_classes={self.num_classes} must be positive")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization={self.normalization!r} is not one of {NORMALIZATIONS}")
        if self.multi_grid is not None and len(self.multi_grid) != multi_grid_length(
                self.model_variant):
            raise ValueError(f"multi_grid={self.multi_grid} must have "
                             f"{multi_grid_length(self.model_variant)} entries for "
                             f"{self.model_variant}")
        if not 0.0 < self.drop_path_keep_prob <= 1.0:
            raise ValueError(f"drop_path_keep_prob={self.drop_path_keep_prob} must be in (0, 1]")
        if self.quantize_delay_step < -1:
            raise ValueError(f"quantize_delay_step={self.quantize_delay_step} must be -1 (off) "
                             "or a step >= 0")
        if self.nas_stem_output_num_conv_filters < 1:
            raise ValueError("nas_stem_output_num_conv_filters="
                             f"{self.nas_stem_output_num_conv_filters} must be positive")
        if self.decoder_output_is_logits and self.decoder_output_stride is None:
            raise ValueError("decoder_output_is_logits needs a decoder (decoder_output_stride)")
        if self.decoder_output_is_logits and self.decoder_filters != self.num_classes:
            raise ValueError(f"decoder_output_is_logits: decoder_filters={self.decoder_filters} "
                             f"must equal num_classes={self.num_classes}")

    @property
    def head(self) -> str:
        """Name of the head in `deeplab.model.heads`: the Dense Prediction Cell or ASPP."""
        return "dense_prediction_cell" if self.dense_prediction_cell_config else "aspp"

    def replace(self, **changes) -> ModelOptions:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON values (tuples as lists, the DPC config as the original's dicts)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def differences(self, other: ModelOptions) -> list[str]:
        """Names of the fields whose values differ from `other`'s."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k in mine if mine[k] != theirs[k])

    @classmethod
    def from_dict(cls, values: dict) -> ModelOptions:
        """From `to_dict` output (or an older run's, whose LEGACY_FIELDS are dropped)."""
        values = {RENAMED_FIELDS.get(k, k): v for k, v in values.items()
                  if k not in LEGACY_FIELDS}
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
