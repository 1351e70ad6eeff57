"""Fault injection: signals, SIGKILL, W&B failures, a failing sweep job. Each must lose nothing already computed."""

from __future__ import annotations

import json
import os
import signal

import pytest

from alm_bench.report.runs import find_runs
from conftest import REPO, complete_rows, read_summary, run_cli, start_slow_run, wait_for_rows

pytestmark = pytest.mark.slow   # each test runs `alm-bench` in a subprocess


@pytest.mark.parametrize("sig, exit_status", [(signal.SIGINT, 130), (signal.SIGTERM, 130)])
def test_signal_mid_run_writes_interrupted_summary_and_trace(sig, exit_status, tmp_path):
    proc = start_slow_run(tmp_path)
    wait_for_rows(tmp_path, 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == exit_status, err
    summary = read_summary(tmp_path)
    assert summary["status"] == "interrupted" and signal.Signals(sig).name in summary["message"]
    rows = complete_rows(tmp_path)
    assert summary["iterations"] == len(rows) >= 2


def test_sigkill_leaves_complete_rows_that_report_reads(tmp_path):
    proc = start_slow_run(tmp_path)
    wait_for_rows(tmp_path, 3)
    proc.kill()
    proc.communicate(timeout=60)
    rows = complete_rows(tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "running"
    (run,) = find_runs([tmp_path])
    assert run.summary["iterations"] == len(rows) and run.metric("objective") == float(rows[-1]["objective"])
    out = run_cli("report", str(tmp_path), "--out", str(tmp_path / "report"))
    assert out.returncode == 0, out.stderr
    assert "running" in (tmp_path / "report" / "runs.csv").read_text()


def test_unreachable_wandb_server_falls_back_to_offline(tmp_path):
    out = run_cli("train", "logger=wandb", "logger.wandb.init_timeout=3", f"hydra.run.dir={tmp_path}",
                  env={"WANDB_MODE": "online", "WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_API_KEY": "x" * 40})
    assert out.returncode == 0, out.stderr
    assert "W&B online init failed" in out.stdout + out.stderr and "logging offline instead" in out.stdout + out.stderr
    assert read_summary(tmp_path)["status"] == "converged"
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(complete_rows(tmp_path)) == read_summary(tmp_path)["iterations"]


def test_crash_inside_wandb_keeps_the_local_trace(tmp_path):
    # A wandb whose log() raises, injected through a sitecustomize-style shim on the path.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import wandb.sdk.wandb_run as r\n"
        "def broken(self, *a, **k):\n    raise RuntimeError('injected wandb crash')\n"
        "r.Run.log = broken\n")
    run_dir = tmp_path / "run"
    out = run_cli("train", "logger=wandb", f"hydra.run.dir={run_dir}",
                  env={"PYTHONPATH": f"{shim}{os.pathsep}{REPO}"})
    assert out.returncode == 0, out.stderr
    assert "W&B failed in log (RuntimeError: injected wandb crash)" in out.stdout + out.stderr
    summary = read_summary(run_dir)
    assert summary["status"] == "converged" and len(complete_rows(run_dir)) == summary["iterations"]


def test_sweep_with_a_failing_job_finishes_the_others_and_reports_it(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_cli("train", "-m", "problem=hs", "problem.name=hs999,hs035,hs071", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 1
    assert read_summary(sweep / "0")["status"] == "failed"
    assert read_summary(sweep / "1")["status"] == read_summary(sweep / "2")["status"] == "converged"
    assert "[job 0] problem.name=hs999,problem=hs: FAILED: problem.name must be one of" in out.stderr
    assert "1 job(s) failed: job 0" in out.stderr
    assert "Traceback" not in out.stderr
