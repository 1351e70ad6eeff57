"""bench.scale's bookkeeping: a run's row carries its certified eps and its own peak memory, and a run the
memory watchdog stops is reported with where it stopped instead of ending the benchmark."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scale import measure, row, where_it_stopped
from bench.sdp import FreshProcesses

pytestmark = pytest.mark.slow   # solver processes


def test_a_row_holds_the_certified_eps_time_and_memory(tmp_path: Path) -> None:
    procs = FreshProcesses()
    try:
        m = procs.call(measure, "random:n=600,degree=6,seed=0", "mixing", 1e-4, 60.0, 16.0, tmp_path)
    finally:
        procs.close()
    assert m["status"] == "converged" and m["n"] == 600 and m["edges"] == 1800
    assert m["certified_eps"] <= 1e-4 and m["bound"] > 0 and 0 < m["cut"] <= m["bound"]
    assert 100 < m["rss_mb"] < 4000 and m["time"] > 0
    text = row("random:n=600,degree=6,seed=0", "mixing", m, None)
    assert "| 600 / 1800 | mixing (rank 36) |" in text and text.count("|") == 11
    last = where_it_stopped(tmp_path / "mixing.jsonl")["last"]   # the progress file has the trace's last row
    assert last["sweeps"] == m["iterations"] and last["max_eps"] <= 1e-4


def test_a_run_past_its_memory_cap_is_stopped_and_reported(tmp_path: Path) -> None:
    procs = FreshProcesses()
    try:   # 0.05 GB: less than the interpreter with torch, so the watchdog stops it at once
        assert procs.call(measure, "random:n=600,degree=6,seed=0", "mixing", 1e-4, 60.0, 0.05, tmp_path) is None
    finally:
        procs.close()
    stopped = where_it_stopped(tmp_path / "mixing.jsonl")
    assert stopped["killed"] == "resident memory passed 0 GB" and stopped["last"] == {}
    assert "resident memory passed 0 GB, before its first row" in row("random:n=600", "mixing", None, stopped)
