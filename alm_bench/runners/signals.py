"""SIGINT (Ctrl-C) and SIGTERM (a scheduler's kill, `timeout`) for every runner, one mechanism.

Within `stop_signals()` either signal raises KeyboardInterrupt at once: the loop catches it (runners.stopping)
and writes status `interrupted` with its trace, its summary and its checkpoint, where it keeps one. With
`after_step=True` (the training loop) the first signal only sets `requested`, so the step in flight finishes
and the checkpoint written next is consistent (a scheduler's SIGTERM leaves seconds of grace, one step fits);
a second signal raises KeyboardInterrupt at once.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """What the handler saw: the name of the first signal, when `after_step` held it back."""

    def __init__(self, after_step: bool) -> None:
        self.after_step = after_step
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not self.after_step or self.requested:
            raise KeyboardInterrupt(f"signal {name}")
        self.signal_name = name


@contextmanager
def stop_signals(after_step: bool = False) -> Iterator[StopRequest]:
    """Route SIGINT and SIGTERM to a StopRequest within the block (main thread only: Python delivers signals
    there; elsewhere the block runs with the handlers it has)."""
    request = StopRequest(after_step)
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.signal(sig, request.handle) for sig in SIGNALS}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
