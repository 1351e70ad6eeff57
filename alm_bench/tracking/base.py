"""One interface for everything that watches a run: the trace files, the console, W&B.

A tracker gets `start(run)` once, `log(row)` per iteration (a flat dict of numbers, always with
"step"), and `finish(summary)` once, also when the run failed or was interrupted.
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
