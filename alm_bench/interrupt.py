"""Ctrl-C or SIGTERM during training: the first one lets the current step finish, so the checkpoint written
next is consistent (a scheduler's SIGTERM leaves seconds of grace, one step fits); a second signal raises
KeyboardInterrupt at once."""

from __future__ import annotations

import signal
import threading
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulInterrupt:
    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> "GracefulInterrupt":
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
