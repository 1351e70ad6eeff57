"""trace.csv (one row per iteration, flushed as written) and summary.json (written atomically)."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, TextIO

from alm_bench.tracking.base import RunInfo

TRACE_FILE = "trace.csv"
SUMMARY_FILE = "summary.json"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2) + "\n")
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    """JSON has no NaN/Inf: write them as strings so the file stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class FileTracker:
    TRACE = TRACE_FILE
    SUMMARY = SUMMARY_FILE

    def __init__(self) -> None:
        self._file: TextIO | None = None
        self._writer: csv.DictWriter | None = None
        self.dir: Path | None = None

    def start(self, run: RunInfo) -> None:
        self.dir = Path(run.output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        # Replaced at the end; if the process is killed (SIGKILL, OOM) the folder still says what it was.
        write_json_atomic(self.dir / self.SUMMARY, {"status": "running", "message": "no final summary: the run "
                                                    "is still going, or was killed; see trace.csv"})

    def log(self, row: dict[str, float]) -> None:
        assert self.dir is not None, "start() first"
        if self._writer is None:
            self._file = open(self.dir / self.TRACE, "w", newline="")
            self._writer = csv.DictWriter(self._file, fieldnames=list(row), extrasaction="ignore", restval="")
            self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()  # a killed run still leaves only complete rows

    def continue_trace(self, previous: Path, upto_step: int) -> None:
        """On resume, before the first `log`: start trace.csv with the rows of `previous` (another run's
        trace.csv, or this folder's own) up to `upto_step`; new rows are appended with the same columns,
        so the trace has no gap and no duplicate step."""
        assert self.dir is not None and self._writer is None, "start() first, log() after"
        if not Path(previous).is_file():
            return
        with open(previous, newline="") as f:
            reader = csv.DictReader(f)
            fieldnames = list(reader.fieldnames or [])
            rows = [r for r in reader if r.get("step") not in (None, "") and float(r["step"]) <= upto_step]
        if not fieldnames:
            return
        self._file = open(self.dir / self.TRACE, "w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=fieldnames, extrasaction="ignore", restval="")
        self._writer.writeheader()
        self._writer.writerows(rows)
        self._file.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.close()
        if self.dir is not None:
            write_json_atomic(self.dir / self.SUMMARY, summary)
