"""Writes, verifies and publishes the requested formats into one export directory.

Layout of export_path (each file only when its format is asked for):
  frozen_inference_graph.pb    frozen   (the original's interface, see deeplab.export.frozen)
  saved_model/                 saved_model (serving_default + serving_bytes signatures)
  model.onnx                   onnx
  model.tflite                 tflite (float32)
  model_dynamic_range.tflite   tflite_dynamic_range (int8 weights; or tflite + tflite_quantize)
  model_int8.tflite            tflite_int8 (full-integer, calibrated; needs calibration images)
  export_info.json             model and export options, verification figures

The formats and their files are the registry `deeplab.export.formats.REGISTRY`.
Everything is written into a hidden staging directory beside export_path and renamed into
place only after every artefact has passed verification, so a failed export leaves nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

import tensorflow as tf

from deeplab.export import formats, frozen, onnx, verify
from deeplab.export.contract import ExportModule
from deeplab.export.errors import ExportError
from deeplab.export.loading import load_exported_model
from deeplab.inference.class_names import INFO_FILE

# The formats of --format=all; the full list (and every format's file) is the registry,
# deeplab.export.formats.REGISTRY.
FORMATS = formats.default_names()


def parse_formats(values) -> tuple[str, ...]:
    """Format names (comma lists allowed, "all" for every default one) -> ordered unique
    tuple; ExportError for an unknown name (see `deeplab.export.formats.parse`)."""
    return formats.parse(values)


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


def _write_and_verify(source: formats.WriteSource, staging: str, export_path: str, names,
                      log, evaluate=None) -> dict:
    """Writes every format into `staging`, verifying each artefact; returns the figures."""
    reference = verify.Reference(source.module)
    figures, keras_miou = {}, None
    for name in names:
        fmt = formats.get(name)
        path = os.path.join(staging, fmt.file_name)
        try:
            fmt.write(source, path)
        except ExportError:
            raise
        except Exception as exc:  # noqa: BLE001 - converters raise many types
            logging.debug("%s conversion failed", name, exc_info=True)
            raise ExportError(f"--format={name}: conversion failed ({_short(exc)})") from None
        model, where = load_exported_model(path), os.path.join(export_path, fmt.file_name)
        report = reference.compare(model, where, fmt.tolerance)
        log(f"verified {report.line()}")
        figures[fmt.file_name] = verify.check(report).to_dict()
        if evaluate is not None and fmt.tolerance.max_miou_drop is not None:
            if keras_miou is None:
                keras_miou = evaluate(_keras_probabilities(source.module))
            miou = verify.check_miou(where, keras_miou, evaluate(model), fmt.tolerance)
            log(f"evaluated {where}: mIoU {miou['miou']:.2f}% (Keras {miou['keras_miou']:.2f}%, "
                f"drop {miou['miou_drop']:.2f} points, limit {fmt.tolerance.max_miou_drop:g})")
            figures[fmt.file_name].update(miou)
    return figures


def _keras_probabilities(module: ExportModule):
    """uint8 [1, H, W, 3] -> float32 numpy probabilities through the Keras model."""
    function = tf.function(module.outputs)
    return lambda image: function(tf.constant(image))["probabilities"].numpy()


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


def stride_summary(exported: int, trained: int | None) -> str:
    """"output stride N" and, when it is not the one the network was trained at, a note."""
    if trained is None or trained == exported:
        return f"output stride {exported}"
    return (f"output stride {exported}, not the trained {trained} (atrous rates scaled by "
            f"{trained}/{exported}; finer strides are slower and usually a little more "
            "accurate)")


def export(module: ExportModule, export_path: str, names, overwrite: bool = False,
           tflite_quantize: bool = False, onnx_opset: int = onnx.DEFAULT_OPSET,
           info: dict | None = None, log=print, calibration=None, evaluate=None) -> dict:
    """Writes the formats `names` of `module` into the directory export_path; see the
    module docstring.

    tflite_quantize: with "tflite", also write "tflite_dynamic_range" (the former flag).
    calibration: uint8 [1, H, W, 3] images for formats that quantise activations
    (tflite_int8); required by them. evaluate: optional fn(run) -> mIoU in 0..1 of `run`
    (uint8 [1, H, W, 3] -> probabilities) on an evaluation split; formats whose tolerance
    has max_miou_drop are then evaluated against the Keras model. info: extra entries for
    export_info.json (e.g. the checkpoint path). Returns the verification figures
    {artefact name: {...}}. Raises ExportError (export_path untouched) when the destination
    is taken, a format is unknown, a package or the calibration images are missing, a
    converter fails, an artefact disagrees with Keras or loses too much mIoU.
    """
    names = parse_formats(names)
    if tflite_quantize and "tflite" in names:
        names = parse_formats([*names, "tflite_dynamic_range"])
    check_destination(export_path, overwrite)
    formats.require_packages(names)
    for name in names:
        if formats.get(name).needs_calibration and not calibration:
            raise ExportError(f"--format={name} quantises activations and needs calibration "
                              "images: pass --calibration_split (and --dataset_dir)")
    parent = os.path.dirname(os.path.abspath(export_path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(export_path)}.partial-", dir=parent)
    try:
        os.chmod(staging, 0o755)
        source = formats.WriteSource(module, onnx_opset, calibration)
        figures = _write_and_verify(source, staging, export_path, names, log, evaluate)
        _write_info(staging, module, names, figures, info)
        check_destination(export_path, overwrite)  # still free after the long conversion?
        _publish(staging, export_path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return figures


def _write_info(staging: str, module: ExportModule, names, figures: dict,
                info: dict | None) -> None:
    content = {"formats": list(names), "model": module.options.to_dict(),
               "export": module.export.to_dict(), "verification": figures, **(info or {})}
    with open(os.path.join(staging, INFO_FILE), "w") as f:
        json.dump(content, f, indent=2, sort_keys=True)
