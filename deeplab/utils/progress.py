"""A tiny progress bar: count, rate per second and ETA, without third-party packages.

On a terminal it rewrites one line with `\\r`; otherwise (logs, CI) it prints a full line at
most every `interval` seconds and once at the end. While a terminal bar is shown, a log
record (Python logging, absl) first clears the bar's line, so the record gets a line of its
own, and the bar is drawn again at the next update.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

_SHOWN: list[Progress] = []  # the terminal bar on screen now (at most one)


class _ClearsBar(logging.Filter):
    """Handler filter: clears the shown terminal bar before the record is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SHOWN:
            _SHOWN[-1].clear()
        return True


_CLEARS_BAR = _ClearsBar()


def _watch_log_handlers() -> None:
    """Puts the bar-clearing filter on the root logger's handlers (absl's among them)."""
    for handler in logging.getLogger().handlers:
        if _CLEARS_BAR not in handler.filters:
            handler.addFilter(_CLEARS_BAR)


def _format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """Counts finished items and reports `desc: done/total rate/s ETA`.

    Use as a context manager or call `close()` at the end:

        with Progress(len(items), "train") as bar:
            for item in items:
                ...
                bar.update()
    """

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        stream: TextIO | None = None,
        interval: float | None = None,
        clock=time.monotonic,
    ):
        self.total = total
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.1 if self.tty else 10.0)
        self.count = 0
        self._clock = clock
        self._start = clock()
        self._last = None
        self._closed = False
        self._cleared = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def line(self) -> str:
        """The status text, e.g. `train: 40/100 12.5/s ETA 00:05`."""
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = self.count / elapsed
        done = f"{self.count}/{self.total}" if self.total is not None else f"{self.count}"
        text = f"{self.desc}: {done} {rate:.1f}/s" if self.desc else f"{done} {rate:.1f}/s"
        if self.total is not None and self.count < self.total and rate > 0:
            text += f" ETA {_format_seconds((self.total - self.count) / rate)}"
        elif self.total is not None and self.count >= self.total:
            text += f" in {_format_seconds(elapsed)}"
        return text

    def update(self, n: int = 1) -> None:
        """Adds `n` finished items and reports if `interval` seconds passed since the last."""
        self.count += n
        now = self._clock()
        if self._last is None or now - self._last >= self.interval or self._cleared:
            self._last = now
            self._write()

    def clear(self) -> None:
        """Erases the terminal bar's line (it is drawn again at the next update)."""
        if self.tty and not self._cleared and self in _SHOWN:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._cleared = True

    def _write(self) -> None:
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
            self._cleared = False
            if self not in _SHOWN:
                _SHOWN.append(self)
                _watch_log_handlers()
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Writes the final status (once)."""
        if self._closed:
            return
        self._closed = True
        self._write()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
            _SHOWN.remove(self)
