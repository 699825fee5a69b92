"""The registered datasets: one module each, registered by its entry in MODULES.

A dataset module defines DESCRIPTOR (a `descriptors.DatasetDescriptor` with class names,
`colormap` and, where the benchmark has them, official `label_ids`) and optionally
PALETTE_ALIASES (other names of its palette for --colormap_type). Adding a dataset is one
new module here plus its name in MODULES; nothing outside deeplab/data names a dataset.
"""

from __future__ import annotations

import importlib

MODULES = ("pascal_voc_seg", "cityscapes", "ade20k", "synthetic")


def register_all(register) -> None:
    """Calls register(descriptor, palette_aliases) for every module of MODULES, in order."""
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        register(module.DESCRIPTOR, getattr(module, "PALETTE_ALIASES", ()))
