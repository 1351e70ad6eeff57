"""A run that diverges or is interrupted stops with a named status and keeps its trace and summary."""

from __future__ import annotations

import pytest
import torch

from alm_bench.controllers.classic_alm import ClassicALM
from alm_bench.problems.base import Constraint, SmoothProblem
from conftest import complete_rows, read_summary, run_loop


class Sabotaged(SmoothProblem):
    """min (x-1)^2 s.t. x >= 2, whose objective turns NaN (or raises Ctrl-C) after `after` evaluations."""

    name = "sabotaged"

    def __init__(self, after: int, fault: str) -> None:
        self.after, self.fault, self.evaluations = after, fault, 0

    def initial_point(self):
        return torch.zeros(1, dtype=torch.float64)

    def objective(self, x):
        self.evaluations += 1
        if self.evaluations > self.after:
            if self.fault == "interrupt":
                raise KeyboardInterrupt
            return (x[0] - 1) ** 2 * float("nan")
        return (x[0] - 1) ** 2

    def constraints(self):
        return [Constraint("x>=2", "ineq", lambda x: 2 - x)]


def _run(problem, folder):
    """The run folder's summary.json and trace.csv rows (each row whole, steps 1, 2, ...)."""
    run_loop(problem, ClassicALM(rho=1.0), folder, files=True)
    return read_summary(folder), complete_rows(folder)


@pytest.mark.parametrize("fault, status", [("nan", "diverged"), ("interrupt", "interrupted")])
def test_fault_keeps_trace_and_writes_summary(fault, status, tmp_path):
    # Count the evaluations of a clean solve's first outer iterations, then sabotage a later one.
    probe = Sabotaged(after=10**9, fault=fault)
    _run(probe, tmp_path / "clean")
    problem = Sabotaged(after=probe.evaluations // 2, fault=fault)
    summary, rows = _run(problem, tmp_path / "faulty")
    assert summary["status"] == status
    assert status in summary["message"]
    assert len(rows) >= 1 and summary["iterations"] == len(rows)
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))
    for row in rows:  # every row complete and finite
        assert all(v != "" for v in row.values())
        assert all(float(v) == float(v) for k, v in row.items())
    assert summary["objective"] == pytest.approx(float(rows[-1]["objective"]))


def test_a_problem_that_is_nan_at_its_initial_point_is_diverged_in_one_line(tmp_path):
    """Nothing to iterate from: status diverged with the reason, no trace, and no traceback (it was 'failed')."""
    summary, rows = run_loop(Sabotaged(after=0, fault="nan"), ClassicALM(rho=1.0), tmp_path, files=True)
    assert summary["status"] == "diverged" and summary["iterations"] == 0 and rows == []
    assert summary["message"] == ("diverged: objective became NaN/Inf at the initial point; the trace up to the "
                                  "last finite step is kept")
    assert read_summary(tmp_path)["status"] == "diverged"
