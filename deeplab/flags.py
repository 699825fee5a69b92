"""Command-line flags of the original DeepLab, and their conversion to typed options.

Only the entry points (train.py, eval.py, vis.py, export_model.py, predict.py) call these:
they define the flags on a FlagValues and turn the parsed values into option objects. The
defaults come from the option dataclasses, so there is one source of defaults. Names, types
and syntax follow the original (`../shared/reference-flags.md`): multi flags repeat
(`--atrous_rates=6 --atrous_rates=12`), list flags take commas (`--train_crop_size=513,513`).
"""

from __future__ import annotations

import dataclasses
import json
import logging

from absl import flags

from deeplab.model.options import ModelOptions, model_variants

MODEL_VARIANTS = model_variants()  # without importing Keras (see model_variants)


_D = ModelOptions()
ORIGINAL_BATCH_NORM_DECAY = 0.9997

# Original flags this implementation does not support: accepted at their defaults only.
UNSUPPORTED_DEFAULTS = {
    "quantize_delay_step": -1,
}


def _list_or_none(values):
    return None if values is None else tuple(int(v) for v in values)


def define_model_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
    """The original's model flags (common.py) plus normalization / group_norm_groups."""
    flags.DEFINE_enum("model_variant", _D.model_variant, MODEL_VARIANTS,
                      "Backbone network.", flag_values=fv)
    flags.DEFINE_multi_integer("atrous_rates", None,
                               "ASPP atrous rates, repeated (6,12,18 at OS16; 12,24,36 at OS8).",
                               flag_values=fv)
    flags.DEFINE_integer("output_stride", _D.output_stride,
                         "Input / backbone feature resolution: 8, 16 or 32.", flag_values=fv)
    flags.DEFINE_list("decoder_output_stride", None,
                      "Decoder output stride (4 for DeepLabv3+); unset for no decoder.",
                      flag_values=fv)
    flags.DEFINE_multi_integer("multi_grid", None, "ResNet block4 unit rates, e.g. 1,2,4.",
                               flag_values=fv)
    flags.DEFINE_float("depth_multiplier", _D.depth_multiplier, "MobileNet width multiplier.",
                       flag_values=fv)
    flags.DEFINE_integer("divisible_by", None, "MobileNetV2 channels rounded to multiples of "
                         "this (unset: 8 at depth_multiplier 1.0, else 1).", flag_values=fv)
    flags.DEFINE_boolean("add_image_level_feature", _D.add_image_level_feature,
                         "ASPP image pooling branch.", flag_values=fv)
    flags.DEFINE_list("image_pooling_crop_size", None,
                      "Crop size setting the image pooling kernel; unset pools everything.",
                      flag_values=fv)
    flags.DEFINE_list("image_pooling_stride", "1,1", "Image pooling stride.", flag_values=fv)
    flags.DEFINE_boolean("aspp_with_batch_norm", _D.aspp_with_batch_norm,
                         "ASPP with batch norm; false skips ASPP.", flag_values=fv)
    flags.DEFINE_boolean("aspp_with_separable_conv", _D.aspp_with_separable_conv,
                         "Separable ASPP convolutions.", flag_values=fv)
    flags.DEFINE_boolean("aspp_with_concat_projection", _D.aspp_with_concat_projection,
                         "Project the concatenated ASPP branches with a 1x1 conv.",
                         flag_values=fv)
    flags.DEFINE_boolean("aspp_with_squeeze_and_excitation",
                         _D.aspp_with_squeeze_and_excitation,
                         "Image pooling gates the ASPP output (MobileNetV3's head).",
                         flag_values=fv)
    flags.DEFINE_boolean("image_se_uses_qsigmoid", _D.image_se_uses_qsigmoid,
                         "That gate is a hard (q-)sigmoid.", flag_values=fv)
    flags.DEFINE_string("dense_prediction_cell_json", "",
                        "Dense Prediction Cell JSON (a path, or the packaged "
                        "dense_prediction_cell_branch5_top1_cityscapes.json) replacing ASPP.",
                        flag_values=fv)
    flags.DEFINE_boolean("decoder_use_separable_conv", _D.decoder_use_separable_conv,
                         "Separable decoder convolutions.", flag_values=fv)
    flags.DEFINE_boolean("decoder_use_sum_merge", _D.decoder_use_sum_merge,
                         "Decoder sums its two inputs instead of concatenating them.",
                         flag_values=fv)
    flags.DEFINE_boolean("decoder_output_is_logits", _D.decoder_output_is_logits,
                         "The decoder output is the logits (needs --decoder_filters = classes).",
                         flag_values=fv)
    flags.DEFINE_integer("logits_kernel_size", _D.logits_kernel_size, "Logits kernel size.",
                         flag_values=fv)
    flags.DEFINE_integer("aspp_convs_filters", _D.aspp_convs_filters, "ASPP channels.",
                         flag_values=fv)
    flags.DEFINE_integer("decoder_filters", _D.decoder_filters, "Decoder channels.",
                         flag_values=fv)
    flags.DEFINE_float("batch_norm_decay", ORIGINAL_BATCH_NORM_DECAY,
                       "Original flag, kept for its scripts: the original's graph does not "
                       "read it (ASPP, DPC and decoder keep 0.9997, backbones their own "
                       "decay); see --head_batch_norm_decay.", flag_values=fv)
    flags.DEFINE_float("head_batch_norm_decay", _D.head_batch_norm_decay,
                       "BatchNorm decay of ASPP, DPC and decoder (the original's fixed "
                       "0.9997 by default; lower, e.g. 0.99, lets short runs' statistics "
                       "settle).", flag_values=fv)
    flags.DEFINE_enum("normalization", _D.normalization, ["batch", "group"],
                      "BatchNorm (as the original) or GroupNorm (small per-device batches).",
                      flag_values=fv)
    flags.DEFINE_integer("group_norm_groups", _D.group_norm_groups, "GroupNorm groups.",
                         flag_values=fv)
    flags.DEFINE_boolean("use_bounded_activation", _D.use_bounded_activation,
                         "ReLU6 and [-6, 6] clips where the original bounds activations "
                         "(ASPP, decoder, Xception), for quantised inference.", flag_values=fv)
    flags.DEFINE_boolean("prediction_with_upsampled_logits",
                         _D.prediction_with_upsampled_logits,
                         "Labels from logits upsampled to the image (bilinear); false: argmax "
                         "at the logits' stride, labels upsampled nearest-neighbour (single "
                         "scale).", flag_values=fv)
    flags.DEFINE_integer("nas_stem_output_num_conv_filters",
                         _D.nas_stem_output_num_conv_filters,
                         "NAS backbones: branch width at stride 4 (doubles per level).",
                         flag_values=fv)
    flags.DEFINE_boolean("nas_use_classification_head", _D.nas_use_classification_head,
                         "NAS backbones end with the original's classification head "
                         "(convs down to stride 32, then 1x1 2048).", flag_values=fv)
    flags.DEFINE_boolean("nas_remove_os32_stride", _D.nas_remove_os32_stride,
                         "NAS backbones: the stride-32 cells run at stride 16.", flag_values=fv)
    # A training flag in the original (train.py); defined here because it reaches the
    # network through ModelOptions (inference never drops paths).
    flags.DEFINE_float("drop_path_keep_prob", _D.drop_path_keep_prob,
                       "NAS training: probability of keeping each cell path (last cell; "
                       "earlier cells keep more); 1.0 turns drop path off.", flag_values=fv)
    for name, default in UNSUPPORTED_DEFAULTS.items():
        define_like(name, default, "Original flag; only its default is supported.", fv)


def define_like(name: str, default, help_text: str, fv: flags.FlagValues) -> None:
    """A boolean, string or integer flag, by the type of `default`."""
    definer = {bool: flags.DEFINE_boolean, str: flags.DEFINE_string,
               int: flags.DEFINE_integer}[type(default)]
    definer(name, default, help_text, flag_values=fv)


# ModelOptions fields set by a flag of another name.
_FIELD_FLAGS = {"dense_prediction_cell_config": "dense_prediction_cell_json"}


def _given(fv, field: str) -> bool:
    return fv[_FIELD_FLAGS.get(field, field)].present > 0


def _dense_prediction_cell(path: str):
    """The DPC config of --dense_prediction_cell_json (a list of branch dicts), or None."""
    if not path:
        return None
    from deeplab.model.dense_prediction_cell import load_config

    try:
        return [dataclasses.asdict(branch) for branch in load_config(path)]
    except ValueError as exc:
        raise flags.ValidationError(f"--dense_prediction_cell_json: {exc}") from None


def model_flag_values(fv: flags.FlagValues) -> dict:
    """ModelOptions fields from the model flags, all of them (given or default)."""
    for name, default in UNSUPPORTED_DEFAULTS.items():
        if fv[name].value != default:
            raise flags.ValidationError(
                f"--{name}={fv[name].value} is not supported (only the default {default!r})")
    if fv.batch_norm_decay != ORIGINAL_BATCH_NORM_DECAY:
        logging.warning("--batch_norm_decay=%s changes nothing, as in the original (its ASPP, "
                        "DPC and decoder keep 0.9997); --head_batch_norm_decay sets theirs",
                        fv.batch_norm_decay)
    values = {
        "model_variant": fv.model_variant,
        "atrous_rates": _list_or_none(fv.atrous_rates),
        "output_stride": fv.output_stride,
        "decoder_output_stride": _list_or_none(fv.decoder_output_stride),
        "multi_grid": _list_or_none(fv.multi_grid),
        "depth_multiplier": fv.depth_multiplier,
        "divisible_by": fv.divisible_by,
        "add_image_level_feature": fv.add_image_level_feature,
        "image_pooling_crop_size": _list_or_none(fv.image_pooling_crop_size),
        "image_pooling_stride": _list_or_none(fv.image_pooling_stride),
        "aspp_with_batch_norm": fv.aspp_with_batch_norm,
        "aspp_with_separable_conv": fv.aspp_with_separable_conv,
        "aspp_with_concat_projection": fv.aspp_with_concat_projection,
        "aspp_with_squeeze_and_excitation": fv.aspp_with_squeeze_and_excitation,
        "image_se_uses_qsigmoid": fv.image_se_uses_qsigmoid,
        "dense_prediction_cell_config": _dense_prediction_cell(fv.dense_prediction_cell_json),
        "decoder_use_separable_conv": fv.decoder_use_separable_conv,
        "decoder_use_sum_merge": fv.decoder_use_sum_merge,
        "decoder_output_is_logits": fv.decoder_output_is_logits,
        "logits_kernel_size": fv.logits_kernel_size,
        "aspp_convs_filters": fv.aspp_convs_filters,
        "decoder_filters": fv.decoder_filters,
        "head_batch_norm_decay": fv.head_batch_norm_decay,
        "normalization": fv.normalization,
        "group_norm_groups": fv.group_norm_groups,
        "use_bounded_activation": fv.use_bounded_activation,
        "prediction_with_upsampled_logits": fv.prediction_with_upsampled_logits,
        "nas_stem_output_num_conv_filters": fv.nas_stem_output_num_conv_filters,
        "nas_use_classification_head": fv.nas_use_classification_head,
        "nas_remove_os32_stride": fv.nas_remove_os32_stride,
        "drop_path_keep_prob": fv.drop_path_keep_prob,
    }
    if values["decoder_output_stride"]:
        values["decoder_output_stride"] = values["decoder_output_stride"][0]
    return values


def model_options_from_flags(fv: flags.FlagValues, num_classes: int,
                             saved: ModelOptions | None = None, **fields) -> ModelOptions:
    """ModelOptions from the flags.

    Without `saved` every flag counts (given or default). With `saved` (the options a
    training run stored) only flags given on the command line override it, so an eval or
    export run cannot silently differ from training. `fields` (crop_size, ...) are set last.
    """
    values = model_flag_values(fv)
    if saved is not None:
        values = {**saved.to_dict(),
                  **{k: v for k, v in values.items() if _given(fv, k)}}
    values.update(num_classes=num_classes, **fields)
    try:
        return ModelOptions.from_dict(values)
    except ValueError as exc:
        raise flags.ValidationError(str(exc)) from None


def overridden_fields(fv: flags.FlagValues, saved: ModelOptions) -> dict:
    """{field: (saved, given)} for model flags given on the command line that differ."""
    given = {k: json.loads(json.dumps(v)) for k, v in model_flag_values(fv).items()
             if _given(fv, k)}
    saved_values = saved.to_dict()
    return {k: (saved_values[k], v) for k, v in given.items() if saved_values[k] != v}


def define_resize_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
    """The original's optional resize of every image (common.py), before crop/pad."""
    flags.DEFINE_integer("min_resize_value", None, "Resize images so the shorter side is this.",
                         flag_values=fv)
    flags.DEFINE_integer("max_resize_value", None, "Cap on the longer side after resizing.",
                         flag_values=fv)
    flags.DEFINE_integer("resize_factor", None, "Resized sizes are multiples of this plus one.",
                         flag_values=fv)
    flags.DEFINE_boolean("keep_aspect_ratio", True, "Keep the aspect ratio when resizing.",
                         flag_values=fv)


def define_damaged_records_flag(fv: flags.FlagValues = flags.FLAGS) -> None:
    """--skip_damaged_records (train.py, eval.py, vis.py): InputOptions.skip_damaged_records."""
    flags.DEFINE_boolean("skip_damaged_records", False,
                         "Scan the split's records first and leave out damaged ones (CRC "
                         "mismatch, cut shard, undecodable image or label), each named once "
                         "and counted; without it a damaged record stops the run, named.",
                         flag_values=fv)


def resize_flag_values(fv: flags.FlagValues) -> dict:
    """InputOptions fields of the resize flags."""
    return {name: fv[name].value for name in (
        "min_resize_value", "max_resize_value", "resize_factor", "keep_aspect_ratio")}


def pair_flag(fv: flags.FlagValues, name: str) -> tuple[int, int] | None:
    """A height,width flag as two positive ints; None when empty or unset. Its values may be
    `H,W` in one flag or one number per repeated flag (`--x=H --x=W`)."""
    values = fv[name].value
    if not values:
        return None
    values = [part for v in values for part in str(v).split(",") if part.strip()]
    try:
        size = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        size = ()
    if len(size) != 2 or min(size) < 1:
        raise flags.ValidationError(f"--{name}={','.join(str(v) for v in values)} must be "
                                    "height,width (two positive integers)")
    return size


def define_inference_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
    """How to predict: the original's eval_scales / add_flipped_images, plus sliding windows."""
    flags.DEFINE_multi_float("eval_scales", [1.0], "Image scales, repeated for multi-scale.",
                             flag_values=fv)
    flags.DEFINE_boolean("add_flipped_images", False, "Also run left-right flipped images.",
                         flag_values=fv)
    flags.DEFINE_list("eval_window_size", None,
                      "Sliding-window height,width for images larger than the crop (e.g. "
                      "Cityscapes 1024x2048); unset runs whole images.", flag_values=fv)
    flags.DEFINE_list("eval_window_stride", None,
                      "Window stride height,width (default 2/3 of the window); probabilities "
                      "of overlapping windows are averaged.", flag_values=fv)


def inference_options_from_flags(fv: flags.FlagValues):
    """InferenceOptions from the flags of define_inference_flags."""
    from deeplab.model.predict import InferenceOptions

    try:
        return InferenceOptions(scales=fv.eval_scales, flip=fv.add_flipped_images,
                                window=pair_flag(fv, "eval_window_size"),
                                window_stride=pair_flag(fv, "eval_window_stride"))
    except ValueError as exc:
        raise flags.ValidationError(str(exc)) from None


def define_checkpoint_source_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
    """Flags eval.py and vis.py share (the original's): checkpoints to read, the dataset."""
    flags.DEFINE_string("master", "", "Unused (TF1 session master); accepted for compatibility.",
                        flag_values=fv)
    flags.DEFINE_string("checkpoint_dir", None, "Directory of checkpoints (ours or the "
                        "original's), or one checkpoint prefix.", flag_values=fv)
    flags.DEFINE_integer("eval_interval_secs", 60 * 5,
                         "Minimum seconds between two passes over new checkpoints.",
                         flag_values=fv)
    flags.DEFINE_integer("eval_timeout_secs", None,
                         "Stop after this many seconds without a new checkpoint (unset: wait "
                         "until TRAINING_DONE).", flag_values=fv)
    flags.DEFINE_string("dataset", "pascal_voc_seg",
                        "Built-in dataset name (used when dataset_dir has no dataset.json).",
                        flag_values=fv)
    flags.DEFINE_string("dataset_dir", None, "Directory of the TFRecord shards (default: the "
                        "training run's, else the built-in dataset for --dataset=synthetic).",
                        flag_values=fv)
