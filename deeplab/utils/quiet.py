"""Keeps TensorFlow's C++ chatter off the user's terminal; real errors still get through.

TensorFlow 2.21 writes its start-up lines from C++ straight to file descriptor 2 while
`import tensorflow` runs (`WARNING: All log messages before absl::InitializeLog() ...`,
`oneDNN custom operations are on ...`, the CPU-feature note), whatever TF_CPP_MIN_LOG_LEVEL
says; the TFLite converter and SavedModel writer add more (`fully_quantize: 0, ...`,
`Sharding callback duration ...`). `cpp_stderr()` sends descriptor 2 to a temporary file
for the duration of such a call and then replays every line that is not C++ INFO/WARNING
chatter (errors, Python warnings and tracebacks are kept). DEEPLAB_VERBOSE=1 (which the
entry points set for `--verbose`) turns this off.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile

VERBOSE_ENV = "DEEPLAB_VERBOSE"

# C++ INFO and WARNING lines (glog format, a .cc source) and the two lines without a prefix
NOISE = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+\.(?:cc|h):\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR"
    r"|To enable the following instructions: .* with the appropriate compiler flags\."
    r"|fully_quantize: \d+, inference_type: .*"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)$")


def is_verbose() -> bool:
    """True when DEEPLAB_VERBOSE is set (not 0): the entry points set it for --verbose."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def verbose_from_argv(argv: list[str]) -> None:
    """Sets DEEPLAB_VERBOSE=1 for a --verbose flag in `argv` (read before absl parses it,
    since TensorFlow may be imported first)."""
    if any(arg in ("--verbose", "--verbose=true", "--verbose=1") for arg in argv[1:]):
        os.environ[VERBOSE_ENV] = "1"


def without_noise(text: str) -> str:
    """`text` without the C++ chatter lines (see NOISE); other lines kept in order."""
    kept = [line for line in text.splitlines(keepends=True) if not NOISE.match(line.rstrip())]
    return "".join(kept)


@contextlib.contextmanager
def cpp_stderr(verbose: bool | None = None):
    """Within the block, descriptor 2 goes to a temporary file; on leaving (also by an
    exception) what is not chatter is written to sys.stderr. No-op when verbose."""
    if (is_verbose() if verbose is None else verbose):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 (e.g. a GUI without a console)
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = without_noise(capture.read().decode("utf-8", "replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader's exec_module inside `cpp_stderr()`."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with cpp_stderr(False):
            self.loader.exec_module(module)

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: the wrapped loader's
        return getattr(self.loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, the first time anything imports it, with a quiet loader."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_import() -> None:
    """Makes the first `import tensorflow` of this process (wherever it happens) run inside
    `cpp_stderr()`. No-op when verbose or when TensorFlow is already imported."""
    if is_verbose() or "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


def quiet_tensorflow_logs() -> None:
    """Unless verbose: TensorFlow's C++ logging at ERROR (TF_CPP_MIN_LOG_LEVEL=2, read when
    TensorFlow loads: call before it is imported) and its Python logger at ERROR (its INFO
    and WARNING lines are notes to TensorFlow developers: `Sharding callback duration`,
    `Using new converter`, ...)."""
    if is_verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from absl import logging as absl_logging  # its logger class, before the logger exists

    absl_logging.get_absl_logger().addFilter(_not_from_tensorflow)  # TF logs through absl


def _not_from_tensorflow(record: logging.LogRecord) -> bool:
    """False for INFO/WARNING records that TensorFlow's own Python files log."""
    return record.levelno >= logging.ERROR or _TF_DIR not in record.pathname


_TF_DIR = os.sep + "tensorflow" + os.sep
