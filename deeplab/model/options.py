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

from deeplab.model.backbone_spec import OUTPUT_STRIDES
from deeplab.utils.option_fields import option

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
        return registry.BACKBONES.names()
    from deeplab.utils.names_cache import cached

    return cached("model_variants", _registered_variants)


def _registered_variants() -> tuple[str, ...]:
    from deeplab.model.backbones import MODEL_VARIANTS

    return MODEL_VARIANTS


# predict: images with more pixels run as windows (about 2048 x 2048: whole Cityscapes frames
# still run whole); here, not in deeplab.model.predict, so flags can use it without TensorFlow
DEFAULT_MAX_PIXELS = 2048 * 2048


def _first_int(values) -> int | None:
    """--decoder_output_stride (a list flag, as the original's) -> its first entry or None."""
    return int(values[0]) if values else None


def _cell_config(path: str):
    """--dense_prediction_cell_json -> the cell's branches as the original's dicts, or None."""
    if not path:
        return None
    from deeplab.model.dense_prediction_cell import load_config

    return [dataclasses.asdict(branch) for branch in load_config(path)]


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
    model_variant: str = option("mobilenet_v2", "enum", "Backbone network.",
                                choices=model_variants)
    atrous_rates: tuple[int, ...] | None = option(
        None, "multi_integer",
        "ASPP atrous rates, repeated (6,12,18 at OS16; 12,24,36 at OS8).")
    output_stride: int = option(16, "integer",
                                "Input / backbone feature resolution: 8, 16 or 32.")
    decoder_output_stride: int | None = option(
        None, "list", "Decoder output stride (4 for DeepLabv3+); unset for no decoder.",
        from_flag=_first_int)
    multi_grid: tuple[int, ...] | None = option(None, "multi_integer",
                                                "ResNet block4 unit rates, e.g. 1,2,4.")
    depth_multiplier: float = option(1.0, "float", "MobileNet width multiplier.")
    divisible_by: int | None = option(
        None, "integer", "MobileNetV2 channels rounded to multiples of this (unset: 8 at "
        "depth_multiplier 1.0, else 1).")
    add_image_level_feature: bool = option(True, "boolean", "ASPP image pooling branch.")
    image_pooling_crop_size: tuple[int, int] | None = option(
        None, "list", "Crop size setting the image pooling kernel; unset pools everything.")
    image_pooling_stride: tuple[int, int] = option((1, 1), "list", "Image pooling stride.")
    aspp_with_batch_norm: bool = option(True, "boolean",
                                        "ASPP with batch norm; false skips ASPP.")
    aspp_with_separable_conv: bool = option(True, "boolean", "Separable ASPP convolutions.")
    aspp_with_concat_projection: bool = option(
        True, "boolean", "Project the concatenated ASPP branches with a 1x1 conv.")
    aspp_with_squeeze_and_excitation: bool = option(
        False, "boolean", "Image pooling gates the ASPP output (MobileNetV3's head).")
    image_se_uses_qsigmoid: bool = option(False, "boolean", "That gate is a hard (q-)sigmoid.")
    dense_prediction_cell_config: tuple | None = option(
        None, "string", "Dense Prediction Cell JSON (a path, or the packaged "
        "dense_prediction_cell_branch5_top1_cityscapes.json) replacing ASPP.",
        flag="dense_prediction_cell_json", flag_default="", from_flag=_cell_config)
    decoder_use_separable_conv: bool = option(True, "boolean",
                                              "Separable decoder convolutions.")
    decoder_use_sum_merge: bool = option(
        False, "boolean", "Decoder sums its two inputs instead of concatenating them.")
    decoder_output_is_logits: bool = option(
        False, "boolean", "The decoder output is the logits (needs --decoder_filters = "
        "classes).")
    logits_kernel_size: int = option(1, "integer", "Logits kernel size.")
    aspp_convs_filters: int = option(256, "integer", "ASPP channels.")
    decoder_filters: int = option(256, "integer", "Decoder channels.")
    head_batch_norm_decay: float = option(
        0.9997, "float", "BatchNorm decay of ASPP, DPC and decoder (the original's fixed "
        "0.9997 by default; lower, e.g. 0.99, lets short runs' statistics settle).")
    use_bounded_activation: bool = option(
        False, "boolean", "ReLU6 and [-6, 6] clips where the original bounds activations "
        "(ASPP, decoder, Xception), for quantised inference.")
    prediction_with_upsampled_logits: bool = option(
        True, "boolean", "Labels from logits upsampled to the image (bilinear); false: argmax "
        "at the logits' stride, labels upsampled nearest-neighbour (single scale).")
    nas_stem_output_num_conv_filters: int = option(
        20, "integer", "NAS backbones: branch width at stride 4 (doubles per level).")
    nas_use_classification_head: bool = option(
        False, "boolean", "NAS backbones end with the original's classification head "
        "(convs down to stride 32, then 1x1 2048).")
    nas_remove_os32_stride: bool = option(
        False, "boolean", "NAS backbones: the stride-32 cells run at stride 16.")
    # A training flag in the original (train.py); here because it reaches the network
    # through ModelOptions (inference never drops paths).
    drop_path_keep_prob: float = option(
        1.0, "float", "NAS training: probability of keeping each cell path (last cell; "
        "earlier cells keep more); 1.0 turns drop path off.")
    quantize_delay_step: int = option(
        -1, "integer", "Quantization-aware training: fake INT8 quantisation from this "
        "training step on (-1: off); evaluation and export of such a model quantise always.")
    normalization: str = option(
        "batch", "enum", "BatchNorm (as the original) or GroupNorm (small per-device "
        "batches).", choices=NORMALIZATIONS)
    group_norm_groups: int = option(32, "integer", "GroupNorm groups.")

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
        if self.output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride={self.output_stride} must be "
                             f"{', '.join(map(str, OUTPUT_STRIDES))}")
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
