"""Glue shared by the command-line entry points: clean errors and model loading.

Library code raises ValueError subclasses whose message names the file and the problem;
`run` turns those into one line on stderr and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter out

from absl import app, flags  # noqa: E402

from deeplab.flags import model_options_from_flags, overridden_fields  # noqa: E402
from deeplab.model.options import ModelOptions  # noqa: E402
from deeplab.utils.run_options import load_model_options, load_run_options  # noqa: E402

# TensorFlow is imported by the functions that need it, so that `--help` does not wait for it



def load_model(options: ModelOptions, checkpoint: str):
    """deeplab.checkpoints.io.load_model, imported when called (it imports TensorFlow)."""
    from deeplab.checkpoints.io import load_model as load

    return load(options, checkpoint)


USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, flags.ValidationError)

# read before flags are parsed (deeplab.utils.quiet.is_verbose); defined so absl accepts it
flags.DEFINE_boolean("verbose", False, "Show TensorFlow's C++ start-up and export messages "
                     "(also DEEPLAB_VERBOSE=1).")


def run(main, doc: str | None = None, takes_arguments: bool = False) -> None:
    """absl `app.run(main)`, with user errors reported as `error: ...` and exit status 2.

    doc: the program's description for `--help` (absl prints `__main__`'s docstring, which
    is a wrapper's or a console script's otherwise).
    takes_arguments: main reads positional arguments; otherwise any is a user error.
    """
    from deeplab.utils import quiet

    quiet.verbose_from_argv(sys.argv)  # also for `python -m deeplab.cli.<name>`
    quiet.quiet_tensorflow_import()
    quiet.quiet_tensorflow_logs()
    if doc:
        sys.modules["__main__"].__doc__ = doc
    # --help lists the key flags of the program (sys.argv[0]): those of main's module, which
    # is not __main__ when a wrapper or a console script runs it
    for flag in flags.FLAGS.get_key_flags_for_module(main.__module__):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)

    def guarded(argv):
        try:
            if len(argv) > 1 and not takes_arguments:
                raise flags.ValidationError(f"unexpected arguments: {' '.join(argv[1:])}")
            return main(argv)
        except USER_ERRORS as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted (Ctrl-C)", file=sys.stderr)
            sys.exit(130)

    app.run(guarded)


def inference_model_options(fv: flags.FlagValues, checkpoint: str,
                            num_classes: int | None = None, **fields) -> ModelOptions:
    """ModelOptions for running `checkpoint`: saved run options, then given flags.

    num_classes: explicit count, else the saved options', else the checkpoint's logits.
    """
    from deeplab.checkpoints.io import checkpoint_num_classes

    saved = load_model_options(checkpoint)
    if saved is not None:
        for field, (was, now) in overridden_fields(fv, saved).items():
            logging.warning("--%s=%s overrides the trained model's %s", field, now, was)
    if num_classes is None:
        num_classes = saved.num_classes if saved else checkpoint_num_classes(checkpoint)
    return model_options_from_flags(fv, num_classes, saved, **fields)


def resolve_dataset_dir(dataset: str, dataset_dir: str | None,
                        checkpoint_dir: str | None = None) -> str:
    """The shards directory: the given one, else the training run's (options.json beside
    `checkpoint_dir`), else the built-in synthetic dataset (generated on first use)."""
    if dataset_dir:
        return dataset_dir
    saved = load_run_options(checkpoint_dir) if checkpoint_dir else None
    if saved and saved.get("data", {}).get("dataset_dir"):
        return saved["data"]["dataset_dir"]
    if dataset != "synthetic":
        raise flags.ValidationError(f"--dataset={dataset} needs --dataset_dir")
    from deeplab.datasets.synthetic import ensure_synthetic_dataset

    return ensure_synthetic_dataset()[0]


def dataset_descriptor(dataset: str, dataset_dir: str | None, given: bool = True):
    """The DatasetDescriptor of `dataset_dir` (its dataset.json, else built-in `dataset`).

    dataset.json is the truth about the shards: when it names another dataset than a
    `--dataset` the user gave, a warning names both and dataset.json is used.
    """
    from deeplab.data.descriptors import DESCRIPTOR_FILE, load_descriptor

    descriptor = load_descriptor(dataset_dir, dataset)
    path = os.path.join(dataset_dir or "", DESCRIPTOR_FILE)
    if given and dataset_dir and os.path.isfile(path) and descriptor.name != dataset:
        logging.warning("--dataset=%s, but %s describes %s (%d classes, ignore label %d); "
                        "using %s", dataset, path, descriptor.name, descriptor.num_classes,
                        descriptor.ignore_label, DESCRIPTOR_FILE)
    return descriptor


def check_crop_size(flag: str, crop, output_stride: int) -> None:
    """flags.ValidationError when a crop (height, width) is smaller than the output stride:
    the network's feature map would be empty and training diverges."""
    if crop and min(crop) < output_stride:
        raise flags.ValidationError(
            f"--{flag}={','.join(str(c) for c in crop)} is smaller than --output_stride="
            f"{output_stride}: the features would have no pixels; use at least "
            f"{output_stride} (e.g. {16 * output_stride + 1},{16 * output_stride + 1})")


def checkpoint_split(fv: flags.FlagValues, split: str):
    """The dataset eval.py / vis.py read, from their checkpoint-source flags in `fv`.

    Sets `fv.dataset_dir` (see `resolve_dataset_dir`) and returns its DatasetDescriptor;
    fails, naming the directory, before any model loads if `split` has no shards.
    """
    from deeplab.data.pipeline import list_shards

    fv.dataset_dir = resolve_dataset_dir(fv.dataset, fv.dataset_dir, fv.checkpoint_dir)
    descriptor = dataset_descriptor(fv.dataset, fv.dataset_dir, fv["dataset"].present > 0)
    list_shards(fv.dataset_dir, split)
    return descriptor


def exported_model(fv: flags.FlagValues, path: str, inference):
    """The exported model at `path` for eval.py / vis.py (a SegmentationModel; its scales and
    flip were baked in at export, so `inference` must be the default: a ValidationError
    otherwise). A label-only one (the original's frozen graphs before 2019) is run on its
    labels."""
    from deeplab.inference.opening import open_model
    from deeplab.model import predict

    if inference != predict.InferenceOptions():
        raise flags.ValidationError("--eval_scales, --add_flipped_images and the window flags "
                                    "apply to checkpoints; an exported model has its scales "
                                    "and flip baked in (export_model.py)")
    model = open_model(path, dataset=fv.dataset if fv["dataset"].present else None)
    logging.info("running %s", model.describe())
    return model


def checkpoint_predictors(fv: flags.FlagValues, descriptor, inference):
    """`evaluator.CheckpointPredictors` whose models follow each checkpoint's saved options
    (overridden by the model flags given in `fv`), with the dataset's class count or
    `--num_classes` when `fv` has it set."""
    from deeplab.evaluate.evaluator import CheckpointPredictors

    num_classes = descriptor.num_classes
    if "num_classes" in fv and fv.num_classes is not None:
        num_classes = fv.num_classes
    return CheckpointPredictors(
        descriptor, inference, load_model,
        lambda prefix: inference_model_options(fv, prefix, num_classes))
