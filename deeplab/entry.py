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

from deeplab.checkpoints.io import CheckpointError, checkpoint_num_classes, restore_model  # noqa: E402
from deeplab.flags import model_options_from_flags, overridden_fields  # noqa: E402
from deeplab.model.deeplab import build_model  # noqa: E402
from deeplab.model.options import ModelOptions  # noqa: E402
from deeplab.utils.run_options import load_model_options, load_run_options  # noqa: E402

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, flags.ValidationError)


def run(main) -> None:
    """absl `app.run(main)`, with user errors reported as `error: ...` and exit status 2."""

    def guarded(argv):
        try:
            return main(argv)
        except USER_ERRORS as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    app.run(guarded)


def inference_model_options(fv: flags.FlagValues, checkpoint: str,
                            num_classes: int | None = None, **fields) -> ModelOptions:
    """ModelOptions for running `checkpoint`: saved run options, then given flags.

    num_classes: explicit count, else the saved options', else the checkpoint's logits.
    """
    saved = load_model_options(checkpoint)
    if saved is not None:
        for field, (was, now) in overridden_fields(fv, saved).items():
            logging.warning("--%s=%s overrides the trained model's %s", field, now, was)
    if num_classes is None:
        num_classes = saved.num_classes if saved else checkpoint_num_classes(checkpoint)
    return model_options_from_flags(fv, num_classes, saved, **fields)


def load_model(options: ModelOptions, checkpoint: str):
    """Builds the network and fills it from `checkpoint` (ours or the original format).

    Raises CheckpointError listing every mismatched name and shape.
    """
    model = build_model(options)
    try:
        report = restore_model(model, checkpoint)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}\n(the model was built for --model_variant="
                              f"{options.model_variant} with {options.num_classes} classes)") \
            from None
    logging.info(report.summary())
    return model


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
    from datasets.synthetic import ensure_synthetic_dataset

    return ensure_synthetic_dataset()[0]


def checkpoint_split(fv: flags.FlagValues, split: str):
    """The dataset eval.py / vis.py read, from their checkpoint-source flags in `fv`.

    Sets `fv.dataset_dir` (see `resolve_dataset_dir`) and returns its DatasetDescriptor;
    fails, naming the directory, before any model loads if `split` has no shards.
    """
    from deeplab.data.descriptors import load_descriptor
    from deeplab.data.pipeline import list_shards

    fv.dataset_dir = resolve_dataset_dir(fv.dataset, fv.dataset_dir, fv.checkpoint_dir)
    descriptor = load_descriptor(fv.dataset_dir, fv.dataset)
    list_shards(fv.dataset_dir, split)
    return descriptor


def checkpoint_predictors(fv: flags.FlagValues, descriptor, inference):
    """`evaluator.CheckpointPredictors` whose models follow each checkpoint's saved options
    (overridden by the model flags given in `fv`), with the dataset's class count."""
    from deeplab.evaluate.evaluator import CheckpointPredictors

    return CheckpointPredictors(
        descriptor, inference, load_model,
        lambda prefix: inference_model_options(fv, prefix, descriptor.num_classes))
