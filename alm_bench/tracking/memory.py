"""A tracker that keeps the rows and the summary in memory: for loops run as library calls (benchmarks,
notebooks, tests), where no run folder is wanted."""

from __future__ import annotations

from typing import Any

from alm_bench.tracking.base import RunInfo


class MemoryTracker:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] | None = None

    def start(self, run: RunInfo) -> None:
        pass

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))

    def finish(self, summary: dict[str, Any]) -> None:
        self.summary = summary
