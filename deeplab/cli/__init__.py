"""The command-line programs: one module per entry point, installed as console scripts.

    deeplab-train    deeplab.cli.train          (python train.py from a checkout)
    deeplab-eval     deeplab.cli.eval           (python eval.py)
    deeplab-vis      deeplab.cli.vis            (python vis.py)
    deeplab-export   deeplab.cli.export_model   (python export_model.py)
    deeplab-predict  deeplab.cli.predict        (python predict.py)
    deeplab-zoo      deeplab.zoo.__main__       (python -m deeplab.zoo)
    deeplab-doctor   deeplab.datasets.doctor    (python -m deeplab.datasets.doctor)

Each module defines its absl flags when imported and runs through `run()`; the root scripts
and `datasets/*.py` of a checkout are wrappers around the same modules.
"""

from __future__ import annotations

import importlib
import runpy
import sys


def forward(name: str, target: str) -> None:
    """Makes the module `name` (a wrapper kept at an old path) stand for module `target`.

    Run as a program (`name == "__main__"`), runs `target` as `__main__` with the same
    arguments; imported, replaces itself in sys.modules by `target`.
    """
    if name == "__main__":
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.modules[name] = importlib.import_module(target)


def doctor() -> None:
    """Console script deeplab-doctor: `python -m deeplab.datasets.doctor` (flags and all)."""
    forward("__main__", "deeplab.datasets.doctor")


def zoo() -> None:
    """Console script deeplab-zoo: `python -m deeplab.zoo`."""
    from deeplab.zoo.__main__ import main

    sys.exit(main())
