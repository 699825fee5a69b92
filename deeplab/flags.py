"""Command-line flags of the original DeepLab, and their conversion to typed options.

Only the entry points (train.py, eval.py, vis.py, export_model.py, predict.py) call these:
they define the flags on a FlagValues and turn the parsed values into option objects. The
defaults come from the option dataclasses, so there is one source of defaults. Names, types
and syntax follow the original (`../shared/reference-flags.md`): multi flags repeat
(`--atrous_rates=6 --atrous_rates=12`), list flags take commas (`--train_crop_size=513,513`).
"""

from __future__ import annotations

import json
import logging

from absl import flags

from deeplab.data.input_options import RECORDS, RESIZE, InputOptions
from deeplab.model.options import ModelOptions, model_variants
from deeplab.train.options import TrainOptions
from deeplab.utils.option_fields import flag_specs

MODEL_VARIANTS = model_variants()  # without importing Keras (see model_variants)


ORIGINAL_BATCH_NORM_DECAY = 0.9997

# Original flags this implementation does not support: accepted at their defaults only.
UNSUPPORTED_DEFAULTS: dict = {}


_DEFINERS = {"integer": flags.DEFINE_integer, "float": flags.DEFINE_float,
             "boolean": flags.DEFINE_boolean, "string": flags.DEFINE_string,
             "list": flags.DEFINE_list, "multi_integer": flags.DEFINE_multi_integer,
             "multi_float": flags.DEFINE_multi_float,
             "multi_string": flags.DEFINE_multi_string}


def define_option_flags(cls, fv: flags.FlagValues, groups=None) -> None:
    """One flag per `option` field of the dataclass `cls` (deeplab.utils.option_fields),
    only those of `groups` when given."""
    for spec in flag_specs(cls, groups):
        if spec.kind == "enum":
            flags.DEFINE_enum(spec.name, spec.default, spec.choices, spec.help, flag_values=fv)
        else:
            _DEFINERS[spec.kind](spec.name, spec.default, spec.help, flag_values=fv)


def option_flag_values(cls, fv: flags.FlagValues, groups=None) -> dict:
    """{field: value} of every `option` field of `cls` (of `groups` when given) from its
    flag (given or default); flags.ValidationError naming the flag when its text does not
    convert."""
    values = {}
    for spec in flag_specs(cls, groups):
        try:
            values[spec.field] = spec.from_flag(fv[spec.name].value)
        except ValueError as exc:
            raise flags.ValidationError(f"--{spec.name}: {exc}") from None
    return values


def define_model_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
    """The original's model flags (common.py), from the ModelOptions fields, plus the
    original's --batch_norm_decay (read by nothing) and flags supported at their default."""
    define_option_flags(ModelOptions, fv)
    flags.DEFINE_float("batch_norm_decay", ORIGINAL_BATCH_NORM_DECAY,
                       "Original flag, kept for its scripts: the original's graph does not "
                       "read it (ASPP, DPC and decoder keep 0.9997, backbones their own "
                       "decay); see --head_batch_norm_decay.", flag_values=fv)
    for name, default in UNSUPPORTED_DEFAULTS.items():
        define_like(name, default, "Original flag; only its default is supported.", fv)


def define_like(name: str, default, help_text: str, fv: flags.FlagValues) -> None:
    """A boolean, string or integer flag, by the type of `default`."""
    definer = {bool: flags.DEFINE_boolean, str: flags.DEFINE_string,
               int: flags.DEFINE_integer}[type(default)]
    definer(name, default, help_text, flag_values=fv)


# ModelOptions field -> its flag, for the fields whose flag has another name
_FIELD_FLAGS = {spec.field: spec.name for spec in flag_specs(ModelOptions)}


def _given(fv, field: str) -> bool:
    return fv[_FIELD_FLAGS.get(field, field)].present > 0


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
    return option_flag_values(ModelOptions, fv)


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
    define_option_flags(InputOptions, fv, groups=(RESIZE,))


def define_damaged_records_flag(fv: flags.FlagValues = flags.FLAGS) -> None:
    """--skip_damaged_records (train.py, eval.py, vis.py): InputOptions.skip_damaged_records."""
    define_option_flags(InputOptions, fv, groups=(RECORDS,))


def resize_flag_values(fv: flags.FlagValues) -> dict:
    """InputOptions fields of the resize flags."""
    return option_flag_values(InputOptions, fv, groups=(RESIZE,))


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


# --- the README's flag tables, generated from the option fields ---------------------------

README_TABLES = (("model", ModelOptions, None), ("train", TrainOptions, None),
                 ("input", InputOptions, None))
TABLE_BEGIN, TABLE_END = "<!-- flag-table:{} begin -->", "<!-- flag-table:{} end -->"


def flag_table(cls, groups=None) -> str:
    """Markdown table of the flags of `cls`'s option fields: flag, kind, default, help.
    Enum choices are listed unless they come from a registry (they grow with it)."""
    rows = ["| flag | kind | default | what it sets |", "|---|---|---|---|"]
    for spec in flag_specs(cls, groups):
        kind = spec.kind
        if spec.kind == "enum":
            declared = cls.__dataclass_fields__[spec.field].metadata["option"]["choices"]
            kind = ("a registered name" if callable(declared)
                    else "one of " + ", ".join(spec.choices))
        default = spec.default
        if isinstance(default, bool):
            default = str(default).lower()
        default = "unset" if default in (None, "") else f"`{default}`"
        rows.append(f"| `--{spec.name}` | {kind} | {default} | {spec.help} |")
    return "\n".join(rows)


def readme_tables() -> dict[str, str]:
    """{name: table} of README_TABLES."""
    return {name: flag_table(cls, groups) for name, cls, groups in README_TABLES}


def update_readme(path: str) -> bool:
    """Rewrites the generated flag tables in the README at `path`; True if it changed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    new = text
    for name, table in readme_tables().items():
        begin, end = TABLE_BEGIN.format(name), TABLE_END.format(name)
        head, rest = new.split(begin, 1)
        new = f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}"
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return new != text


if __name__ == "__main__":  # python -m deeplab.flags README.md: regenerate the flag tables
    import sys

    print("updated" if update_readme(sys.argv[1]) else "unchanged")
