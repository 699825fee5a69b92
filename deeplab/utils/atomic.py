"""Files replaced whole: written under a unique temporary name beside them, then renamed.

The temporary file is created exclusively (O_EXCL), so a stray or planted `*.tmp` in a shared
folder is never written through, and a crash leaves the old file intact.
"""

from __future__ import annotations

import json
import os
import uuid


def write_atomically(path: str, text: str) -> str:
    """Writes `text` to `path` (see the module docstring); returns `path`."""
    folder, name = os.path.split(path)
    tmp = os.path.join(folder or ".", f".{name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_json_atomically(path: str, data) -> str:
    """`data` as indented JSON (with a final newline) through `write_atomically`."""
    return write_atomically(path, json.dumps(data, indent=2) + "\n")
