"""The registry of export formats: every format export_model.py can write, in one place.

One `ExportFormat` entry per format: its name (`--format=NAME`), the file (or directory) it
writes inside the export directory, its writer, its loader and the tolerance its artefact
must meet against the Keras model. The exporter, the loader (`deeplab.export.loading`) and
export_model.py's flag help all read this registry; an unknown name is an ExportError.

Adding a format = one module with its writer (and, for a new runtime, its loader) plus one
`register(ExportFormat(...))` line at the end of this file.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from collections.abc import Callable, Sequence

import numpy as np

from deeplab.export import verify
from deeplab.export.contract import ExportModule
from deeplab.export.errors import ExportError
from deeplab.utils.registry import Registry


class WriteSource:
    """What a writer reads: the module, its frozen function (traced once, on first use) and
    the export options.

    module: the ExportModule (Keras model + export contract).
    frozen_function: ConcreteFunction on uint8 [1, ?, ?, 3] with the original's names,
      variables (BatchNorm already folded) as constants; see `deeplab.export.frozen.freeze`.
    onnx_opset: ONNX opset for ONNX writers.
    calibration: uint8 [1, H, W, 3] images for post-training quantisation, or None.
    """

    def __init__(self, module: ExportModule, onnx_opset: int = 17,
                 calibration: Sequence[np.ndarray] | None = None):
        self.module = module
        self.onnx_opset = onnx_opset
        self.calibration = calibration

    @functools.cached_property
    def frozen_function(self):
        from deeplab.export import frozen  # noqa: PLC0415 - frozen imports this module's users

        return frozen.freeze(self.module)


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """One export format.

    name: the --format value. file_name: artefact inside the export directory (a directory
    for SavedModel). write(source, path): writes the artefact at `path`. load(path, **kw):
    an `ExportedModel` (callable uint8 [B, H, W, 3] -> float32 [B, H, W, C]). tolerance:
    verification limits against Keras. in_all: part of --format=all. requires: Python
    packages the writer and loader import (checked before the export starts).
    needs_calibration: the writer reads `source.calibration` and refuses to run without it.
    """

    name: str
    file_name: str
    write: Callable[[WriteSource, str], object]
    load: Callable[..., object]
    tolerance: verify.Tolerance = verify.FLOAT
    in_all: bool = True
    requires: tuple[str, ...] = ()
    needs_calibration: bool = False

    @property
    def suffix(self) -> str:
        """The artefact's file suffix (".pb", ".onnx", ".tflite"), "" for a directory."""
        return os.path.splitext(self.file_name)[1]


REGISTRY: Registry[ExportFormat] = Registry("export format", ExportError)


def register(fmt: ExportFormat) -> ExportFormat:
    """Adds `fmt` to the registry; a second format of the same name is a programming error."""
    return REGISTRY.register(fmt.name, fmt)


def get(name: str) -> ExportFormat:
    """The registered format `name`; ExportError naming the choices otherwise."""
    if name not in REGISTRY:
        raise ExportError(f"unknown --format {name}: choose from {', '.join(REGISTRY)} or all")
    return REGISTRY.lookup(name)


def default_names() -> tuple[str, ...]:
    """The formats written by --format=all, in registry order."""
    return tuple(name for name, fmt in REGISTRY.items() if fmt.in_all)


def parse(values) -> tuple[str, ...]:
    """Format names (comma lists allowed, "all" for every in_all one) -> ordered unique
    tuple in registry order; ExportError for an unknown or empty list. A single string
    ("onnx", "frozen,onnx") counts as one value."""
    if isinstance(values, str):
        values = [values]
    names = [v.strip().lower() for value in values for v in str(value).split(",") if v.strip()]
    chosen = set(names) - {"all"} | (set(default_names()) if "all" in names else set())
    unknown = sorted(set(names) - set(REGISTRY) - {"all"})
    if unknown or not names:
        raise ExportError(f"unknown --format {', '.join(unknown) or '(empty)'}: choose from "
                          f"{', '.join(REGISTRY)} or all (several as --format=frozen,onnx)")
    return tuple(name for name in REGISTRY if name in chosen)


def require_packages(names) -> None:
    """ExportError naming every missing package of the formats `names` and the pip command."""
    for name in names:
        missing = [p for p in get(name).requires if importlib.util.find_spec(p) is None]
        if missing:
            raise ExportError(f"--format={name} needs {' and '.join(missing)}: pip install "
                              f"{' '.join(missing)} (or the package's `export` extra)")


def by_suffix(suffix: str) -> ExportFormat | None:
    """The first registered file format whose artefact ends with `suffix` (its loader reads
    every format of that suffix), or None."""
    suffix = suffix.lower()
    return next((f for f in REGISTRY.values() if f.suffix and f.suffix == suffix), None)


def _register_builtin() -> None:
    from deeplab.export import frozen, int8, onnx, runtimes, saved_model, tflite  # noqa: PLC0415

    register(ExportFormat("frozen", frozen.FILE_NAME,
                          lambda s, p: frozen.write_frozen_graph(s.frozen_function, p),
                          runtimes.FrozenGraphModel))
    register(ExportFormat("saved_model", saved_model.DIR_NAME,
                          lambda s, p: saved_model.write_saved_model(s.module, p),
                          runtimes.SavedModelModel))
    register(ExportFormat("onnx", onnx.FILE_NAME,
                          lambda s, p: onnx.write_onnx(s.frozen_function, p, s.onnx_opset),
                          runtimes.OnnxModel, requires=onnx.PACKAGES))
    register(ExportFormat("tflite", tflite.FILE_NAME,
                          lambda s, p: tflite.write_tflite(s.frozen_function, p),
                          runtimes.TfliteModel))
    register(ExportFormat("tflite_dynamic_range", tflite.QUANTIZED_FILE_NAME,
                          lambda s, p: tflite.write_tflite(s.frozen_function, p, quantize=True),
                          runtimes.TfliteModel, verify.QUANTIZED, in_all=False))
    register(ExportFormat("tflite_int8", int8.FILE_NAME, int8.write_int8, runtimes.TfliteModel,
                          int8.TOLERANCE, in_all=False, needs_calibration=True))


_register_builtin()
