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


def launch(name: str) -> None:
    """Runs the program `deeplab.cli.<name>` (its `run()`), TensorFlow's start-up chatter kept
    off the terminal unless --verbose / DEEPLAB_VERBOSE=1 (see deeplab.utils.quiet)."""
    from deeplab.utils import quiet

    quiet.verbose_from_argv(sys.argv)
    quiet.quiet_tensorflow_import()
    quiet.quiet_tensorflow_logs()
    importlib.import_module(f"deeplab.cli.{name}").run()


def train() -> None:
    """Console script deeplab-train."""
    launch("train")


def evaluate() -> None:
    """Console script deeplab-eval."""
    launch("eval")


def vis() -> None:
    """Console script deeplab-vis."""
    launch("vis")


def export() -> None:
    """Console script deeplab-export."""
    launch("export_model")


def predict() -> None:
    """Console script deeplab-predict."""
    launch("predict")


def doctor() -> None:
    """Console script deeplab-doctor: `python -m deeplab.datasets.doctor` (flags and all)."""
    from deeplab.utils import quiet

    quiet.quiet_tensorflow_import()
    forward("__main__", "deeplab.datasets.doctor")


def zoo() -> None:
    """Console script deeplab-zoo: `python -m deeplab.zoo`."""
    from deeplab.utils import quiet
    from deeplab.zoo.__main__ import main

    quiet.quiet_tensorflow_import()
    sys.exit(main())
