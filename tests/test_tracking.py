"""The trackers: trace.csv rows, atomic JSON summary, W&B offline files, no wandb import when off."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from alm_bench.task import run
from alm_bench.tracking import FileTracker, RunInfo
from conftest import REPO, compose_config


def test_file_tracker_writes_header_rows_and_standard_json(tmp_path):
    t = FileTracker()
    t.start(RunInfo(output_dir=tmp_path, name="x"))
    t.log({"step": 1, "objective": 2.5, "rho": 1.0})
    # rows are flushed as written: readable before the tracker is finished
    assert list(csv.DictReader(open(tmp_path / "trace.csv"))) == [{"step": "1", "objective": "2.5", "rho": "1.0"}]
    t.log({"step": 2, "objective": 2.0, "rho": 10.0})
    t.finish({"status": "converged", "objective": float("nan"), "x": [1.0, float("inf")]})
    summary = json.loads((tmp_path / "summary.json").read_text())  # strict JSON: NaN written as a string
    assert summary == {"status": "converged", "objective": "nan", "x": [1.0, "inf"]}
    assert not list(tmp_path.glob("*.tmp"))


def test_run_writes_trace_columns_and_summary(tmp_path):
    cfg = compose_config("problem=hs", "problem.name=hs035")
    summary = run(cfg, tmp_path, choices={"problem": "hs", "controller": "classic_alm"})
    rows = list(csv.DictReader(open(tmp_path / "trace.csv")))
    for column in ("step", "objective", "max_violation", "stationarity", "rho", "lambda_norm", "mu_norm",
                   "inner_steps", "wall_time_s", "g:sum", "mu:sum"):
        assert column in rows[0], column
    assert len(rows) == summary["iterations"]
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    for key in ("status", "objective", "max_violation", "iterations", "wall_time_s", "x", "seed"):
        assert key in on_disk, key
    assert on_disk["status"] == "converged" and abs(on_disk["objective"] - 1 / 9) < 1e-9


@pytest.mark.slow
def test_wandb_offline_run_writes_its_files(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_config("logger=wandb", "logger.wandb.project=alm-bench-test")
    summary = run(cfg, tmp_path, choices={"problem": "quadratic", "controller": "classic_alm"}, group="sweep-x")
    assert summary["status"] == "converged"
    import wandb

    # What the command does when it ends (cli.launch): W&B's service writes the run file asynchronously, and
    # finish() may return before all of it is on disk (the file held only its header in one loaded run).
    wandb.teardown()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    (log,) = runs[0].glob("run-*.wandb")
    records = log.read_bytes()  # protobuf records, strings stored verbatim
    for text in (b"alm_bench.controllers.classic_alm.ClassicALM", b"max_violation", b"rho", b"sweep-x",
                 b"converged"):
        assert text in records, text


@pytest.mark.slow
def test_no_wandb_import_when_logging_is_local(tmp_path):
    code = (
        "import sys; sys.path.insert(0, 'tests'); from conftest import compose_config;"
        "from alm_bench.task import run; from pathlib import Path;"
        f"run(compose_config(), Path({str(tmp_path)!r}));"
        "print('wandb' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_conic_progress_shows_the_bound_and_max_eps(tmp_path):
    """Issue 19, item 13: a Max-Cut row's live text is its bound and max ε, not ρ and a 1e-16 violation."""
    from rich.console import Console

    from alm_bench.tracking import ConsoleTracker

    console = Console(force_terminal=True, width=160, record=True, file=open(tmp_path / "tty", "w"))
    tracker = ConsoleTracker(console)
    tracker.start(RunInfo(output_dir=tmp_path, name="maxcut/bala", total_steps=100))
    tracker.log({"step": 3, "objective": -3191.55, "bound": -3193.61, "max_eps": 4.46e-4, "max_violation": 6e-16,
                 "rho": 0.25})
    live = tracker.progress.tasks[0].fields["live"]
    assert live == "bound=-3193.61  max ε=4.46e-04"
    tracker.log({"step": 4, "objective": 17.0, "max_violation": 1e-3, "rho": 10.0})
    assert tracker.progress.tasks[0].fields["live"] == "objective=17  max_violation=0.001  rho=10"
    tracker.finish({"status": "converged"})


def test_a_sweep_job_line_names_a_file_by_its_name():
    from alm_bench.tracking.sweep import QUOTED_PATH

    line = "controller=bala,problem.path='/data/gset/G14.txt',problem.tol=1e-05,problem=maxcut"
    assert QUOTED_PATH.sub(r"\1", line) == "controller=bala,problem.path=G14.txt,problem.tol=1e-05,problem=maxcut"
