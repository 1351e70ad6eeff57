"""`alm-bench solve maxcut FILE` / `solve sdp FILE` end to end: run folder, trace, summary, cut, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import DATA, read_summary, run_cli

pytestmark = pytest.mark.slow   # each test runs `alm-bench solve` in a subprocess


def only_run(outputs: Path) -> Path:
    runs = [p for p in (outputs / "runs").rglob("summary.json")]
    assert len(runs) == 1, runs
    return runs[0].parent


def test_solve_maxcut_writes_trace_summary_and_cut(outputs: Path) -> None:
    result = run_cli("solve", "maxcut", str(DATA / "G14_suitesparse.mat"), "problem.tol=5e-5")
    assert result.returncode == 0, result.stderr
    run = only_run(outputs)
    summary = read_summary(run)
    assert summary["status"] == "converged" and summary["controller"] == "bala"
    assert abs(summary["sdp_bound"] - 3191.5668) <= 1e-4 * 3191.5668
    assert 0.878 * summary["sdp_bound"] <= summary["cut_value"] <= summary["sdp_bound"]
    rows = list(csv.DictReader(open(run / "trace.csv")))
    assert rows and {"step_type", "bound", "eps_p", "eps_d", "eps_g", "rho", "rank", "eig_iters"} <= set(rows[0])
    assert len((run / "cut.txt").read_text().split()) == 800
    assert "sdp_bound" in result.stderr + result.stdout


def test_solve_with_another_controller_and_an_override(outputs: Path) -> None:
    # mcp100 is diag(X) = 1: the rescaled factor is exactly feasible, so eps_g alone stops it; the bound to 0.03
    # needs eps_g well below 5e-4 (it is relative to twice the value)
    result = run_cli("solve", "sdp", str(DATA / "mcp100.dat-s"), "controller=classic_alm", "controller.rho=1",
                     "problem.tol=5e-5")
    assert result.returncode == 0, result.stderr
    summary = read_summary(only_run(outputs))
    assert summary["controller"] == "classic_alm" and abs(summary["sdp_bound"] - 226.157351) <= 0.03


def test_solve_errors_are_one_line(outputs: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("3 2\n1 2 1\n")
    result = run_cli("solve", "maxcut", str(bad))
    assert result.returncode == 2 and str(bad) in result.stderr and "Traceback" not in result.stderr
    result = run_cli("solve", "maxcut", str(tmp_path / "missing.mat"))
    assert result.returncode == 2 and "no such file" in result.stderr
    result = run_cli("train", "problem=quadratic", "controller=bala")
    assert result.returncode == 2 and "cannot solve" in result.stderr
    result = run_cli("solve", "sdp", str(DATA / "theta1.dat-s"), "controller=mixing")
    assert result.returncode == 2 and "diag" in result.stderr
