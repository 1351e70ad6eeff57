"""One interface for everything that watches a run: the trace files, the console, W&B.

A tracker gets `start(run)` once, `log(row)` per iteration (a flat dict of numbers, always with
"step"), and `finish(summary)` once, also when the run failed or was interrupted. Optional hooks
(`set_total_steps`, `continue_trace`) reach only the trackers that define them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class RunInfo:
    output_dir: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    total_steps: int | None = None
    group: str | None = None
    job_type: str = "train"
    tags: list[str] = field(default_factory=list)


class Tracker(Protocol):
    def start(self, run: RunInfo) -> None: ...
    def log(self, row: dict[str, float]) -> None: ...
    def finish(self, summary: dict[str, Any]) -> None: ...


class Trackers:
    """Fans each call out to every tracker, in order (the file tracker first, so it is never skipped)."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers

    def start(self, run: RunInfo) -> None:
        for t in self.trackers:
            t.start(run)

    def log(self, row: dict[str, float]) -> None:
        for t in self.trackers:
            t.log(row)

    def finish(self, summary: dict[str, Any]) -> None:
        for t in self.trackers:
            t.finish(summary)

    # Optional hooks: a tracker that has the method gets the call, the others need not know it.
    def set_total_steps(self, total: int) -> None:
        """The loop learned how long the run is (e.g. after loading the data)."""
        self._each("set_total_steps", total)

    def continue_trace(self, previous: Path, upto_step: int) -> None:
        """A resumed run: carry on the trace of `previous` from after `upto_step`."""
        self._each("continue_trace", previous, upto_step)

    def _each(self, hook: str, *args: Any) -> None:
        for t in self.trackers:
            if hasattr(t, hook):
                getattr(t, hook)(*args)
