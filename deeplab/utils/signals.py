"""Stop requests: SIGTERM and Ctrl-C ask a long loop to stop at a safe point.

    with StopRequests() as stop:
        while not stop.requested:
            ...one step...
    if stop.requested: save and report stop.name

Inside the block the first SIGTERM or SIGINT only records the signal (the step in progress
finishes); a second SIGINT raises KeyboardInterrupt as usual, for a user who wants out now.
The previous handlers come back on exit. Outside the main thread nothing is installed.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_status(signum: int) -> int:
    """The shell's status for a process ended by `signum`: 128 + signal number."""
    return 128 + int(signum)


class StopRequests:
    """Context manager recording SIGTERM / SIGINT; see the module docstring.

    Attributes: `signum` (the first signal received, or None), `requested`, `name`.
    """

    def __init__(self, signals=STOP_SIGNALS):
        self.signals = tuple(signals)
        self.signum: int | None = None
        self._previous: dict = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: the user insists
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
