"""Ctrl-C and `kill` (SIGINT, SIGTERM) stop a scan between chunks: the chunk in flight is
scored and written, the summary says what remains, and `--resume` picks up from there."""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopBetweenChunks:
    """While active, the first SIGINT/SIGTERM is remembered in `signum` for the loop to check
    after its chunk; a second one stops at once (KeyboardInterrupt), for a scorer that hangs."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def _ask(self, signum, frame) -> None:
        # Only a flag: printing here could re-enter a stderr write the signal interrupted.
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum else None

    def __enter__(self) -> "StopBetweenChunks":
        if threading.current_thread() is threading.main_thread():  # signals reach only that one
            self._previous = {s: signal.signal(s, self._ask) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def exit_status(signal_name: str) -> int:
    """The shell's status for a process a signal ended: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signal.Signals[signal_name].value
