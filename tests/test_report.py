"""`alm-bench report`: tables, CSV, plots with named axes, paired statistics against hand-computed values."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from alm_bench.errors import UserError
from alm_bench.report import paired, plots
from alm_bench.report.build import report
from alm_bench.report.runs import find_runs
from conftest import run_cli


def make_run(folder: Path, overrides: list[str], summary: dict, trace: list[dict], problem="quadratic"):
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(
        {"hydra": {"runtime": {"choices": {"problem": problem, "controller": "x", "hydra/launcher": "basic"}}}}))
    (folder / "summary.json").write_text(json.dumps(summary))
    with open(folder / "trace.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(trace[0]))
        writer.writeheader()
        writer.writerows(trace)


ACCURACY = {  # controller -> accuracy per seed 1..4; differences B - A = 1, 2, 3, 4 (in percent points)
    "unconstrained": [90.0, 91.0, 89.0, 90.5],
    "ema_alm": [91.0, 93.0, 92.0, 94.5],
}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    job = 0
    for controller, accuracies in ACCURACY.items():
        for seed, accuracy in enumerate(accuracies, start=1):
            trace = [{"step": s, "objective": 2.0 / s, "g": 0.5 - 0.1 * s, "lambda": 0.1 * s, "rho": 1.0 + s}
                     for s in range(1, 6)]
            make_run(tmp_path / "sweep" / str(job), [f"controller={controller}", f"seed={seed}"],
                     {"status": "converged", "objective": 2.0 / 5, "test_accuracy": accuracy, "g": -0.05,
                      "wall_time_s": 1.0 + job}, trace)
            job += 1
    return tmp_path / "sweep"


def test_paired_comparison_matches_hand_computation():
    result = paired.compare(np.array(ACCURACY["unconstrained"]), np.array(ACCURACY["ema_alm"]), "acc")
    # d = 1, 2, 3, 4: mean 2.5, sd = sqrt(5/3), se = sd/2, t_{0.975,3} = 3.182446305
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2
    assert result.n == 4 and result.mean_difference == pytest.approx(2.5)
    assert (result.ci_low, result.ci_high) == pytest.approx((2.5 - half, 2.5 + half), rel=1e-9)
    # t = 2.5 / (sd/2) = 3.8729833; two-sided p with 3 dof
    assert result.t_pvalue == pytest.approx(0.030466, abs=2e-6)
    # all 16 sign patterns: only all-plus and all-minus reach |mean| >= 2.5
    assert result.permutation_pvalue == pytest.approx(2 / 16)


def test_sign_flip_is_symmetric_and_one_for_zero_effect():
    assert paired.sign_flip_pvalue(np.array([1.0, -1.0, 1.0, -1.0])) == 1.0
    assert paired.sign_flip_pvalue(np.array([3.0] * 20)) == pytest.approx(2 / 2**20, abs=1e-4)


def test_report_writes_table_csv_plots_and_paired_comparison(sweep, tmp_path):
    out = report([sweep], out=tmp_path / "rep")
    rows = list(csv.DictReader(open(out / "runs.csv")))
    assert len(rows) == 8
    assert {"run", "overrides", "status", "objective", "test_accuracy", "wall_time_s"} <= set(rows[0])
    assert rows[0]["overrides"] == "controller=unconstrained seed=1"
    for metric in ("objective", "g", "lambda", "rho"):
        png = out / "plots" / f"{metric}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    paired_md = (out / "paired.md").read_text()
    line = next(l for l in paired_md.splitlines() if l.startswith("| test_accuracy"))
    assert "controller=ema_alm" in line and "+2.5" in line and "0.125" in line
    assert "## Paired comparison by controller" in (out / "report.md").read_text()


def test_plot_axes_carry_metric_names(sweep):
    runs = find_runs([sweep])
    fig = plots.figure(runs, "rho", color_by="controller")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "rho" and ax.get_xlabel() == "step"
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["controller=ema_alm",
                                                                         "controller=unconstrained"]
    assert len(ax.lines) == 8


@pytest.mark.slow
def test_report_cli_and_metric_option(sweep, tmp_path):
    out = run_cli("report", str(sweep), "--metric", "test_accuracy", "--by", "controller",
                  "--baseline", "unconstrained", "--out", str(tmp_path / "r"))
    assert out.returncode == 0, out.stderr
    table = (tmp_path / "r" / "paired.md").read_text()
    assert table.count("\n") == 3 and "test_accuracy" in table


@pytest.mark.slow
def test_report_errors_are_one_line(tmp_path, sweep):
    (tmp_path / "empty").mkdir()
    out = run_cli("report", str(tmp_path / "empty"))
    assert out.returncode == 2 and out.stderr.strip() == f"alm-bench: error: {tmp_path / 'empty'}: no runs found (no summary.json in it or below it)"
    other = tmp_path / "other"
    make_run(other / "0", ["problem=hs"], {"status": "converged", "objective": 1.0}, [{"step": 1, "objective": 1.0}],
             problem="hs")
    with pytest.raises(UserError, match="different problems"):
        report([sweep, other])


def test_report_skips_a_row_cut_off_by_a_killed_run(sweep):
    trace = sweep / "0" / "trace.csv"
    trace.write_text(trace.read_text() + "6,0.3")  # a half-written last line
    (run,) = [r for r in find_runs([sweep]) if r.path.name == "0"]
    assert [row["step"] for row in run.trace] == [1, 2, 3, 4, 5]
