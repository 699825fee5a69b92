"""The options a run saves beside its checkpoints, and how later commands find them.

A training run writes `<train_logdir>/options.json` = {"model": ModelOptions fields,
"train": ..., "data": ...}. eval, vis, export and predict read the model section from the
checkpoint's directory so their network cannot silently differ from the trained one.
"""

from __future__ import annotations

import dataclasses
import json
import os

from deeplab.model.options import ModelOptions
from deeplab.utils.atomic import write_atomically

OPTIONS_FILE = "options.json"
TRAINING_DONE = "TRAINING_DONE"  # marker a finished training run leaves in its logdir


def _plain(value):
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_run_options(logdir: str, **sections) -> str:
    """Writes the sections (dataclasses or dicts) atomically; returns the file path."""
    os.makedirs(logdir, exist_ok=True)
    text = json.dumps({k: _plain(v) for k, v in sections.items()}, indent=2, sort_keys=True)
    return write_atomically(os.path.join(logdir, OPTIONS_FILE), text)


def find_options_file(checkpoint_path: str) -> str | None:
    """options.json in `checkpoint_path` (a directory) or beside it (a prefix), or None."""
    if not checkpoint_path:
        return None
    folder = checkpoint_path if os.path.isdir(checkpoint_path) else os.path.dirname(
        checkpoint_path)
    path = os.path.join(folder or ".", OPTIONS_FILE)
    return path if os.path.isfile(path) else None


def load_run_options(checkpoint_path: str) -> dict | None:
    """The saved sections as plain dicts, or None when no options file is found."""
    path = find_options_file(checkpoint_path)
    if path is None:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable run options ({exc})") from None


def load_model_options(checkpoint_path: str) -> ModelOptions | None:
    """The ModelOptions a training run saved for this checkpoint, or None."""
    saved = load_run_options(checkpoint_path)
    if not saved or "model" not in saved:
        return None
    try:
        return ModelOptions.from_dict(saved["model"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{find_options_file(checkpoint_path)}: bad model options ({exc})") \
            from None


def training_done(checkpoint_dir: str) -> bool:
    """True if the trainer has written the TRAINING_DONE marker into `checkpoint_dir`."""
    return os.path.isfile(os.path.join(checkpoint_dir, TRAINING_DONE))


def mark_training_done(checkpoint_dir: str, note: str = "") -> str:
    """Writes the TRAINING_DONE marker (for the trainer, after its final checkpoint)."""
    return write_atomically(os.path.join(checkpoint_dir, TRAINING_DONE), note)


def clear_training_done(checkpoint_dir: str) -> None:
    """Removes the marker (a training run starting or resuming in `checkpoint_dir`)."""
    path = os.path.join(checkpoint_dir, TRAINING_DONE)
    if os.path.isfile(path):
        os.remove(path)
