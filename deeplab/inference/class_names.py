"""Where a model's class names and colours come from: the dataset it was trained on (its run
options, a zoo entry, or the checkpoint an export names), else the pascal colour map."""

from __future__ import annotations

import json
import os

import numpy as np

INFO_FILE = "export_info.json"  # written by deeplab.export.exporter beside every artefact


def checkpoint_dataset(path: str) -> tuple[str | None, str | None]:
    """(dataset name, dataset_dir) a training run (or a zoo folder) saved beside `path`."""
    from deeplab.utils.run_options import load_run_options

    saved = load_run_options(path) or {}
    data = saved.get("data") or {}
    return data.get("dataset") or (saved.get("zoo") or {}).get("dataset"), data.get(
        "dataset_dir")


def export_info(path: str) -> dict:
    """The export_info.json of an exported model at `path` (beside the artefact, or one
    folder up for a SavedModel directory); {} when there is none (a foreign model)."""
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    info = os.path.join(folder, INFO_FILE)
    if not os.path.isfile(info) and os.path.isfile(os.path.join(folder, "saved_model.pb")):
        info = os.path.join(os.path.dirname(os.path.normpath(folder)), INFO_FILE)
    if not os.path.isfile(info):
        return {}
    with open(info) as f:
        return json.load(f)


def source_dataset(path: str, info: dict | None = None) -> tuple[str | None, str | None]:
    """(dataset name, dataset_dir) a model was trained on: a checkpoint's (or zoo folder's)
    saved run options, or for an exported model those of the checkpoint its
    export_info.json names (`info` when already read); (None, None) when unknown."""
    info = export_info(path) if info is None else info
    if info:
        checkpoint = info.get("checkpoint")
        return checkpoint_dataset(checkpoint) if checkpoint else (None, None)
    return checkpoint_dataset(path)


def class_names_and_colormap(dataset: str | None, dataset_dir: str | None = None,
                             num_classes: int | None = None
                             ) -> tuple[tuple[str, ...], np.ndarray]:
    """(class names, () when unknown or not num_classes of them; colour map uint8 [N, 3]
    RGB) of a dataset: the run's dataset.json in `dataset_dir` if present, else the
    registered `dataset`; the pascal colour map when neither is known."""
    from deeplab.data.descriptors import load_descriptor
    from deeplab.vis.colormap import create_colormap, dataset_palette

    try:
        folder = dataset_dir if dataset_dir and os.path.isdir(dataset_dir) else None
        descriptor = load_descriptor(folder, dataset) if dataset or folder else None
    except ValueError:
        descriptor = None
    if descriptor is None:
        return (), create_colormap("pascal")
    names = descriptor.class_names
    if num_classes is not None and len(names) != num_classes:
        names = ()
    return tuple(names), create_colormap(dataset_palette(descriptor))
