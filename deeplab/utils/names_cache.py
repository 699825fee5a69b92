"""Values that live in modules importing TensorFlow (registry names that become flag choices,
a few defaults), remembered on disk so that defining flags and `--help` do not import it.

`cached(key, compute)` returns the value `compute()` gave the last time, as long as the
package's files (names, sizes, modification times) and the interpreter are the same as
then; otherwise it calls `compute()` (which imports TensorFlow) and remembers the answer in
<DEEPLAB_HOME>/names.json (default ~/.cache/deeplab_tf2). Values must be JSON (lists come
back as tuples). An unwritable cache only costs the time.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

HOME_ENV = "DEEPLAB_HOME"
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # deeplab/
CACHE_FILE = "names.json"
_IN_PROCESS: dict[str, object] = {}


def deeplab_home() -> str:
    """$DEEPLAB_HOME, else ~/.cache/deeplab_tf2: downloads, the zoo, these names."""
    return os.path.expanduser(os.environ.get(HOME_ENV) or "~/.cache/deeplab_tf2")


def fingerprint(root: str = PACKAGE_DIR) -> str:
    """A digest of the interpreter and of the names, sizes and modification times of the
    .py and .json files under `root`: changes when any of them does (about 5 ms)."""
    import hashlib

    digest = hashlib.sha256(sys.executable.encode())
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".json")):
                path = os.path.join(folder, name)
                stat = os.stat(path)
                digest.update(f"{os.path.relpath(path, root)}:{stat.st_size}:"
                              f"{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def _frozen(value):
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def cached(key: str, compute: Callable[[], object]):
    """compute()'s value, from the cache while the package is unchanged (see module doc)."""
    if key in _IN_PROCESS:
        return _IN_PROCESS[key]
    path = os.path.join(deeplab_home(), CACHE_FILE)
    stamp = fingerprint()
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        saved = {}
    values = saved.get("values", {}) if saved.get("fingerprint") == stamp else {}
    if key not in values:
        computed = compute()
        values[key] = list(computed) if isinstance(computed, tuple) else computed
        try:
            from deeplab.utils.atomic import write_json_atomically

            os.makedirs(deeplab_home(), exist_ok=True)
            write_json_atomically(path, {"fingerprint": stamp, "values": values})
        except OSError:
            pass
    _IN_PROCESS[key] = _frozen(values[key])
    return _IN_PROCESS[key]
