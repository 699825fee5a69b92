"""Loading exported models: the format detected from the path, the runtime from the registry.

    model = load_exported_model(path)
    probabilities = model(images)      # [B, H, W, 3] uint8/float -> float32 [B, H, W, C]

`path` is one artefact of export_model.py (a frozen `*.pb`, a SavedModel directory, `*.onnx`,
`*.tflite`) or an export directory; a directory holding several formats runs the best one
(`PREFERENCE`), named by `detect_format`.
"""

from __future__ import annotations

import logging
import os

from deeplab.export import formats
from deeplab.export.errors import ExportError
from deeplab.export.runtimes import ExportedModel


def artefacts_in(directory: str) -> list[str]:
    """Paths of the exported models directly inside `directory` (sorted)."""
    found = []
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        if os.path.isfile(full) and _by_suffix(os.path.splitext(name)[1]) is not None:
            found.append(full)
        elif os.path.isfile(os.path.join(full, "saved_model.pb")):
            found.append(full)
    return found


# Full-precision formats first (the frozen graph is the original's contract and loads
# fastest), quantised TFLite last; the folder export_model.py --format=all writes.
PREFERENCE = ("frozen", "saved_model", "onnx", "tflite", "tflite_dynamic_range", "tflite_int8")


def best_artefact(paths) -> tuple[str, str] | None:
    """(format, path) of the most preferred of `paths` written under its export file name
    (see `PREFERENCE`), or None when none of them is."""
    by_name = {os.path.basename(os.path.normpath(p)): p for p in paths}
    for name in PREFERENCE:
        fmt = formats.get(name)
        if fmt.file_name in by_name:
            return name, by_name[fmt.file_name]
    return None


def detect_format(path: str) -> tuple[str, str]:
    """(format, artefact path) for `path`; ExportError when it is none of the formats.

    A directory holding several of export_model.py's artefacts gives the best one
    (`PREFERENCE`, logged); one holding several unknown ones is an ExportError listing them.
    """
    if not os.path.exists(path):
        raise ExportError(f"{path}: no such exported model")
    if os.path.basename(path) == "saved_model.pb":
        path = os.path.dirname(path) or "."
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return "saved_model", path
        found = artefacts_in(path)
        best = best_artefact(found)
        if len(found) > 1 and best is not None:
            logging.info("%s holds %d exported models; running %s (%s)", path, len(found),
                         best[1], best[0])
            return best
        if len(found) != 1:
            detail = f"holds {len(found)}: {', '.join(found)}" if found else "holds none"
            raise ExportError(f"{path}: pass one exported model (frozen .pb, SavedModel "
                              f"directory, .onnx or .tflite); this directory {detail}")
        return detect_format(found[0])
    fmt = _by_suffix(os.path.splitext(path)[1])
    if fmt is None:
        raise ExportError(f"{path}: unknown exported-model format (expected a frozen .pb, a "
                          "SavedModel directory, .onnx or .tflite)")
    return fmt.name, path


def load_exported_model(path: str, **kwargs) -> ExportedModel:
    """The exported model at `path`, ready to call; see the module docstring.

    kwargs go to the format's loader (TFLite: num_threads). Raises ExportError (a
    ValueError) naming the path when it is missing, of an unknown format or unreadable.
    """
    fmt, artefact = detect_format(path)
    return formats.get(fmt).load(artefact, **kwargs)


def _by_suffix(suffix: str):
    """The registered format whose loader reads files ending with `suffix`, or None."""
    return formats.by_suffix(suffix)
