"""SCS runs in a child process: a SIGTERM to the run stops it within a second, kills the child, and leaves status
`interrupted` with the trace rows made so far (each call of `trace_every` SCS iterations is a row)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("scs")
pytestmark = pytest.mark.slow   # a subprocess that solves for seconds

REPO = Path(__file__).resolve().parents[1]
G14 = REPO / "tests" / "data" / "G14.txt"


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(c) for c in text)
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from /proc (Linux)")
def test_sigterm_stops_scs_within_a_second_and_kills_its_process(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "alm_bench", "solve", "maxcut", str(G14), "controller=scs",
                             "controller.trace_every=5", "problem.tol=1e-9", f"hydra.run.dir={run_dir}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    trace = run_dir / "trace.csv"
    deadline = time.monotonic() + 180
    while not (trace.exists() and len(trace.read_text().splitlines()) >= 2):   # a header and one row
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    solver_processes = children(proc.pid)
    assert solver_processes, "SCS should run in a child process"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 130, err
    # Within a second of the signal the run has stopped SCS (the rest is the interpreter's own exit).
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "SIGTERM" in summary["message"]
    rows = list(csv.DictReader(trace.open()))
    assert summary["iterations"] == len(rows) >= 1 and int(rows[0]["scs_iterations"]) == 5
    assert took < 5.0, took
    for pid in solver_processes:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(), pid
