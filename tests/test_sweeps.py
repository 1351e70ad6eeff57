"""Sweeps through the launcher plugins, the sweep callback, W&B grouping, and the missing-plugin error."""

from __future__ import annotations

import pytest

from alm_bench.cli import missing_plugin
from conftest import read_summary, run_cli


@pytest.mark.slow
def test_joblib_sweep_runs_both_jobs_and_summarises(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_cli("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "problem=hs",
                  "problem.name=hs071,hs035", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr
    assert {read_summary(sweep / j)["problem"] for j in ("0", "1")} == {"hs071", "hs035"}
    assert "[job 0] problem.name=hs071,problem=hs: converged, objective=17.014017" in out.stderr
    assert "[job 1] problem.name=hs035,problem=hs: converged, objective=0.11111111" in out.stderr
    assert "2 of 2 jobs ran" in out.stderr


@pytest.mark.slow
def test_submitit_local_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_cli("train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "seed=1,2",
                  f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr
    assert [read_summary(sweep / j)["seed"] for j in ("0", "1")] == [1, 2]
    assert all(read_summary(sweep / j)["status"] == "converged" for j in ("0", "1"))


@pytest.mark.slow
def test_wandb_offline_sweep_groups_its_runs(tmp_path):
    sweep = tmp_path / "2026-01-01_00-00-00"
    out = run_cli("train", "-m", "logger=wandb", "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr
    for job in ("0", "1"):
        (log,) = (sweep / job / "wandb").glob("offline-run-*/run-*.wandb")
        records = log.read_bytes()
        assert sweep.name.encode() in records  # the W&B group is the sweep
        assert f"seed={job}".encode() in records  # the run name carries its overrides
    (table_run,) = (sweep / "wandb").glob("offline-run-*/run-*.wandb")  # the sweep's own table of runs
    records = table_run.read_bytes()
    assert b"sweep_summary" in records and sweep.name.encode() in records and b"table" in records


@pytest.mark.parametrize("arg", ["hydra/launcher=joblib", "hydra/sweeper=optuna"])
def test_missing_plugin_is_one_clear_line(arg, monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    message = missing_plugin(["-m", arg, "seed=1,2"])
    assert message.startswith(f"{arg} needs the hydra-") and "pip install 'alm-bench[sweeps]'" in message
    assert missing_plugin(["seed=1"]) is None


@pytest.mark.slow
def test_optuna_preset_tunes_against_the_summary_metric(tmp_path):
    sweep = tmp_path / "tune"
    out = run_cli("train", "-m", "experiment=tune_classic_alm", "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr
    import yaml

    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = [read_summary(sweep / j)["inner_steps"] for j in ("0", "1", "2")]
    assert best["best_value"] == min(trials)  # the sweeper saw each run's summary.inner_steps
    assert set(best["best_params"]) == {"controller.rho", "controller.rho_growth", "controller.progress_ratio"}
    # the tuned metric is a column of the final table, the best run is starred and named with its parameters
    table = out.stderr.split("jobs ran")[1]
    assert "inner steps" in table.splitlines()[2]
    starred = next(line for line in table.splitlines() if " * " in line)
    assert starred.split()[-1] == str(best["best_value"]).removesuffix(".0")
    rho = best["best_params"]["controller.rho"]
    assert f"best inner_steps={best['best_value']} with controller.rho={rho} " in out.stderr


@pytest.mark.slow
def test_a_sweep_whose_jobs_all_failed_suggests_no_report(tmp_path):
    """Issue 19, item 6: no `alm-bench report` hint after a sweep with nothing to report, and `report` on it
    is one line with exit status 2 instead of an empty table."""
    sweep = tmp_path / "sweep"
    out = run_cli("train", "-m", "problem=hs", "problem.name=hs998,hs999", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 1 and "0 of 2 jobs ran" in out.stderr
    assert "alm-bench report" not in out.stderr and "2 job(s) failed" in out.stderr
    rep = run_cli("report", str(sweep))
    assert rep.returncode == 2 and rep.stdout == ""
    assert rep.stderr.startswith(f"alm-bench: error: {sweep}: all 2 runs failed, nothing to report (run 0: ")
    assert len(rep.stderr.strip().splitlines()) == 1
