"""A tiny progress bar: count, rate per second and ETA, without third-party packages.

On a terminal it rewrites one line with `\\r`; otherwise (logs, CI) it prints a full line at
most every `interval` seconds and once at the end.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


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
        if self._last is None or now - self._last >= self.interval:
            self._last = now
            self._write()

    def _write(self) -> None:
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
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
