"""File handling of a split's shards: temporary names, whole-split replacement, recovery.

A converter writes a split's shards under temporary names (`.tmp-<pid>-<final name>`, which
the reader's glob `<split>-*` never matches). When every shard is complete, `replace_split`
records the renames in a journal (`.replace-<split>.json`), renames each temporary shard to
its final name, removes the split's shards of another shard count, and removes the journal.
A run killed in between leaves the journal; the next converter run in that directory
(`recover`) finishes the renames and removals, so a split is replaced only as a whole and
two shard counts are never left side by side. `recover` also removes temporary shards of
runs that are no longer alive.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence

from absl import logging

from deeplab.utils.atomic import write_json_atomically

_TEMP = re.compile(r"^\.tmp-(\d+)-")
_JOURNAL = re.compile(r"^\.replace-(.+)\.json$")


def temporary_name(path: str) -> str:
    """`.tmp-<pid>-<name>` beside `path`: a name the glob `<split>-*` does not match."""
    directory, base = os.path.split(path)
    return os.path.join(directory, f".tmp-{os.getpid()}-{base}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_shard_of(name: str, split: str) -> bool:
    return re.fullmatch(rf"{re.escape(split)}-\d{{5}}-of-\d{{5}}\.tfrecord", name) is not None


def _journal_path(output_dir: str, split: str) -> str:
    return os.path.join(output_dir, f".replace-{split}.json")


def _finish(output_dir: str, split: str, renames: Sequence[Sequence[str]]) -> None:
    """Renames every temporary that still exists, then removes shards not among the finals."""
    for temp, final in renames:
        if os.path.exists(temp):
            os.replace(temp, final)
    keep = {os.path.basename(final) for _, final in renames}
    for name in os.listdir(output_dir):
        if _is_shard_of(name, split) and name not in keep:
            os.remove(os.path.join(output_dir, name))


def replace_split(output_dir: str, split: str, temps: Sequence[str],
                  finals: Sequence[str]) -> None:
    """Puts complete temporary shards in place of the split's shards (see the module doc)."""
    journal = _journal_path(output_dir, split)
    renames = [[t, f] for t, f in zip(temps, finals, strict=True)]
    write_json_atomically(journal, {"pid": os.getpid(), "renames": renames})
    _finish(output_dir, split, renames)
    os.remove(journal)


def recover(output_dir: str) -> list[str]:
    """Finishes replacements and removes temporary shards left by dead runs.

    Returns the names it acted on (journals finished, temporaries removed), for the log.
    """
    if not os.path.isdir(output_dir):
        return []
    done = []
    for name in sorted(os.listdir(output_dir)):
        match = _JOURNAL.match(name)
        if not match:
            continue
        path = os.path.join(output_dir, name)
        try:
            with open(path, encoding="utf-8") as f:
                journal = json.load(f)
            if _alive(int(journal["pid"])):
                continue
            _finish(output_dir, match.group(1), journal["renames"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            logging.warning("%s: cannot finish an interrupted replacement (%s)", path, err)
            continue
        os.remove(path)
        logging.warning("finished the interrupted replacement of split %r in %s",
                        match.group(1), output_dir)
        done.append(name)
    for name in sorted(os.listdir(output_dir)):
        match = _TEMP.match(name)
        if match and not _alive(int(match.group(1))):
            os.remove(os.path.join(output_dir, name))
            logging.warning("removed %s, a temporary shard of a dead run", name)
            done.append(name)
    return done
