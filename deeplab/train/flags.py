"""train.py's flags (the original's names, types and defaults) and their TrainOptions.

    fv = flags.FlagValues(); define_train_flags(fv); fv(argv)
    options = train_options_from_flags(fv)

train.py defines them on absl's global FLAGS; `python -m deeplab.train.conformance` on a
FlagValues of its own, so both parse a command line the same way. Defaults come from
TrainOptions (one source).
"""

from __future__ import annotations

from absl import flags

from deeplab.data.input_options import AUGMENT, InputOptions
from deeplab.flags import (
    define_damaged_records_flag,
    define_like,
    define_model_flags,
    define_option_flags,
    define_resize_flags,
    option_flag_values,
)
from deeplab.train.options import TrainOptions

_CROP = InputOptions.__dataclass_fields__["crop_size"].default

# The original's TF1 cluster flags: {flag: (its default, what replaces it here)}.
CLUSTER_FLAGS = {
    "master": ("", "tf.distribute: set TF_CONFIG on each machine"),
    "task": (0, "tf.distribute: the task index is TF_CONFIG's"),
    "num_replicas": (1, "tf.distribute: start one process per machine with TF_CONFIG"),
    "num_ps_tasks": (0, "tf.distribute (MultiWorkerMirroredStrategy): parameter servers "
                        "are not used"),
    "startup_delay_steps": (15, "nothing: workers start together under tf.distribute"),
    "clone_on_cpu": (False, "--num_clones (on a CPU-only machine it splits the CPU)"),
}


def _define_cluster_flags(fv):
    for name, (default, instead) in CLUSTER_FLAGS.items():
        define_like(name, default, f"Original TF1 cluster flag; use {instead}.", fv)


def _define_data_flags(fv):
    flags.DEFINE_string("dataset", "synthetic",
                        "pascal_voc_seg, cityscapes, ade20k, or synthetic (built in: generated "
                        "on first use when --dataset_dir is unset).", flag_values=fv)
    flags.DEFINE_string("dataset_dir", None, "Directory of TFRecord shards.", flag_values=fv)
    flags.DEFINE_string("train_split", "train", "Split to train on.", flag_values=fv)
    flags.DEFINE_list("train_crop_size", ",".join(map(str, _CROP)),
                      "Training crop height,width.", flag_values=fv)
    define_option_flags(InputOptions, fv, groups=(AUGMENT,))


def define_train_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
    """Every flag of train.py on `fv`: training, data, model and resize flags."""
    define_option_flags(TrainOptions, fv)
    _define_cluster_flags(fv)
    _define_data_flags(fv)
    define_model_flags(fv)
    define_resize_flags(fv)
    define_damaged_records_flag(fv)


def check_cluster_flags(fv: flags.FlagValues) -> None:
    """ValidationError naming the replacement of the first TF1 cluster flag set."""
    for name, (default, instead) in CLUSTER_FLAGS.items():
        if fv[name].value != default:
            raise flags.ValidationError(f"--{name} is a TF1 cluster flag and is not "
                                        f"supported; use {instead}")


def train_options_from_flags(fv: flags.FlagValues) -> TrainOptions:
    """TrainOptions from the flags (label_weights are resolved by the caller, which knows
    the dataset); ValidationError for a bad value."""
    values = option_flag_values(TrainOptions, fv)
    values.pop("label_weights")
    try:
        return TrainOptions(**values)
    except ValueError as exc:
        raise flags.ValidationError(str(exc)) from None
