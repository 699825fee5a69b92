"""Writes, verifies and publishes the requested formats into one export directory.

Layout of export_path (each file only when its format is asked for):
  frozen_inference_graph.pb    frozen   (the original's interface, see deeplab.export.frozen)
  saved_model/                 saved_model (serving_default + serving_bytes signatures)
  model.onnx                   onnx
  model.tflite                 tflite (float32)
  model_dynamic_range.tflite   tflite with tflite_quantize
  export_info.json             model and export options, verification figures

Everything is written into a hidden staging directory beside export_path and renamed into
place only after every artefact has passed verification, so a failed export leaves nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

from deeplab.export import frozen, onnx, saved_model, tflite, verify
from deeplab.export.errors import ExportError
from deeplab.export.graph import ExportModule
from deeplab.export.runners import load_exported_model

FORMATS = ("frozen", "saved_model", "onnx", "tflite")
INFO_FILE = "export_info.json"


def parse_formats(values) -> tuple[str, ...]:
    """Format names (comma lists allowed, "all" for every one) -> ordered unique tuple."""
    names = [v.strip().lower() for value in values for v in str(value).split(",") if v.strip()]
    if "all" in names:
        return FORMATS
    unknown = sorted(set(names) - set(FORMATS))
    if unknown or not names:
        raise ExportError(f"unknown --format {', '.join(unknown) or '(empty)'}: choose from "
                          f"{', '.join(FORMATS)} or all (several as --format=frozen,onnx)")
    return tuple(f for f in FORMATS if f in names)


def check_destination(export_path: str, overwrite: bool) -> None:
    """Raises ExportError when export_path cannot (or may not) become the export directory."""
    if not export_path:
        raise ExportError("--export_path is required")
    if export_path.endswith(".pb"):
        raise ExportError(f"--export_path={export_path}: give a directory; the frozen graph is "
                          f"written to <export_path>/{frozen.FILE_NAME} (unlike the original, "
                          "which took the .pb file name)")
    if os.path.isfile(export_path):
        raise ExportError(f"{export_path}: is a file; --export_path must be a directory")
    if os.path.exists(export_path) and not overwrite:
        raise ExportError(f"{export_path}: already exists; pass --overwrite to replace it")


def _short(exc: Exception, limit: int = 600) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    text = " | ".join(lines[:2] + (["...", lines[-1]] if len(lines) > 3 else lines[2:]))
    return f"{type(exc).__name__}: {text[:limit]}"


def _write_format(fmt: str, module, frozen_function, staging: str, options: dict) -> list:
    """Writes one format; returns [(artefact path, verify.Tolerance)]."""
    join = lambda name: os.path.join(staging, name)
    if fmt == "frozen":
        return [(frozen.write_frozen_graph(frozen_function, join(frozen.FILE_NAME)), verify.FLOAT)]
    if fmt == "saved_model":
        return [(saved_model.write_saved_model(module, join(saved_model.DIR_NAME)), verify.FLOAT)]
    if fmt == "onnx":
        path = onnx.write_onnx(frozen_function, join(onnx.FILE_NAME), options["onnx_opset"])
        return [(path, verify.FLOAT)]
    written = [(tflite.write_tflite(frozen_function, join(tflite.FILE_NAME)), verify.FLOAT)]
    if options["tflite_quantize"]:
        written.append((tflite.write_tflite(frozen_function, join(tflite.QUANTIZED_FILE_NAME),
                                            quantize=True), verify.QUANTIZED))
    return written


def _write_and_verify(module: ExportModule, staging: str, export_path: str, formats,
                      options: dict, log) -> dict:
    """Writes every format into `staging`, verifying each artefact; returns the figures."""
    reference = verify.Reference(module)
    frozen_function = frozen.freeze(module) if set(formats) - {"saved_model"} else None
    figures = {}
    for fmt in formats:
        try:
            written = _write_format(fmt, module, frozen_function, staging, options)
        except ExportError:
            raise
        except Exception as exc:  # noqa: BLE001 - converters raise many types
            logging.debug("%s conversion failed", fmt, exc_info=True)
            raise ExportError(f"--format={fmt}: conversion failed ({_short(exc)})") from None
        for path, tolerance in written:
            name = os.path.relpath(path, staging)
            report = reference.compare(load_exported_model(path),
                                       os.path.join(export_path, name), tolerance)
            log(f"verified {report.line()}")
            figures[name] = verify.check(report).to_dict()
    return figures


def _publish(staging: str, export_path: str) -> None:
    """Renames staging to export_path, replacing an existing directory only at the end."""
    old = None
    if os.path.exists(export_path):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(export_path)}.old-",
                               dir=os.path.dirname(os.path.abspath(export_path)))
        os.rmdir(old)
        os.rename(export_path, old)
    try:
        os.rename(staging, export_path)
    except OSError:
        if old:
            os.rename(old, export_path)
        raise
    if old:
        shutil.rmtree(old, ignore_errors=True)


def export(module: ExportModule, export_path: str, formats, overwrite: bool = False,
           tflite_quantize: bool = False, onnx_opset: int = onnx.DEFAULT_OPSET,
           info: dict | None = None, log=print) -> dict:
    """Writes `formats` of `module` into the directory export_path; see the module docstring.

    info: extra entries for export_info.json (e.g. the checkpoint path). Returns the
    verification figures {artefact name: {...}}. Raises ExportError (export_path untouched)
    when the destination is taken, a converter fails or an artefact disagrees with Keras.
    """
    formats = parse_formats(formats)
    check_destination(export_path, overwrite)
    if "onnx" in formats:
        onnx.require_onnx_packages()
    parent = os.path.dirname(os.path.abspath(export_path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(export_path)}.partial-", dir=parent)
    try:
        os.chmod(staging, 0o755)
        options = {"tflite_quantize": tflite_quantize, "onnx_opset": onnx_opset}
        figures = _write_and_verify(module, staging, export_path, formats, options, log)
        _write_info(staging, module, formats, figures, info)
        check_destination(export_path, overwrite)  # still free after the long conversion?
        _publish(staging, export_path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return figures


def _write_info(staging: str, module: ExportModule, formats, figures: dict,
                info: dict | None) -> None:
    content = {"formats": list(formats), "model": module.options.to_dict(),
               "export": module.export.to_dict(), "verification": figures, **(info or {})}
    with open(os.path.join(staging, INFO_FILE), "w") as f:
        json.dump(content, f, indent=2, sort_keys=True)
