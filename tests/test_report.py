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
from alm_bench.report import paired, plots, tables
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
            trace = [{"step": s, "objective": 2.0 / s, "g": 0.5 - 0.1 * s, "lambda": 0.1 * s, "rho": 1.0 + s,
                      "wall_time_s": 0.1 * s * (1 + job)} for s in range(1, 6)]
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
    left, right = fig.axes
    assert left.get_ylabel() == "penalty ρ" and left.get_xlabel() == "outer iteration"
    assert right.get_xlabel() == "wall time (s)"
    assert sorted(t.get_text() for t in right.get_legend().get_texts()) == ["controller=ema_alm",
                                                                           "controller=unconstrained"]
    assert len(left.lines) == len(right.lines) == 8


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


# ---- issue 19, item 7: pairing and statistics --------------------------------------------------------

def test_zero_variance_differences_have_no_t_test():
    same_shift = paired.compare(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0]), "x")
    assert math.isnan(same_shift.t_pvalue) and math.isnan(same_shift.ci_low)
    assert "zero variance" in same_shift.note and same_shift.mean_difference == pytest.approx(1.0)
    assert same_shift.permutation_pvalue == pytest.approx(2 / 8)  # the smallest p 3 pairs allow, not 0
    identical = paired.compare(np.array([17.014, 0.5]), np.array([17.014 * (1 + 1e-15), 0.5]), "x")
    assert identical.mean_difference == 0 and math.isnan(identical.t_pvalue) and "no difference" in identical.note
    assert identical.permutation_pvalue == 1.0
    one = paired.compare(np.array([1.0]), np.array([3.0]), "x")
    assert one.n == 1 and math.isnan(one.t_pvalue) and "1 pair" in one.note


def test_monte_carlo_sign_flip_is_never_zero():
    p = paired.sign_flip_pvalue(np.full(40, 3.0), samples=1000)
    assert p == pytest.approx(1 / 1001)


def make_job(folder: Path, overrides: dict, config: dict, summary: dict, trace: list[dict] | None = None):
    """A run folder as a sweep job leaves it: overrides, the composed config, summary and trace."""
    make_run(folder, [f"{k}={v}" for k, v in overrides.items()], summary,
             trace or [{"step": 1, "objective": summary.get("objective", 0.0), "wall_time_s": 0.1}],
             problem=config.get("problem_kind", "hs"))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump({k: v for k, v in config.items()
                                                                  if k != "problem_kind"}))


def test_runs_of_different_problems_are_never_paired(tmp_path):
    """problem.name=hs071,hs035 x seed=0,1: the one two-valued setting is the problem itself."""
    sweep = tmp_path / "hs"
    job = 0
    for name, f_star in (("hs071", 17.014017), ("hs035", 1 / 9)):
        for seed in (0, 1):
            make_job(sweep / str(job), {"problem.name": name, "seed": seed},
                     {"seed": seed, "problem": {"name": name}, "controller": {"rho": None}},
                     {"status": "converged", "problem": name, "objective": f_star, "reference_objective": f_star,
                      "wall_time_s": 0.1 + job})
            job += 1
    runs = find_runs([sweep])
    with pytest.raises(UserError, match="problem.name: its values are different problems .hs071, hs035."):
        paired.pair_runs(runs, "problem.name", "objective")
    out = report([sweep], out=tmp_path / "rep")
    assert not (out / "paired.md").exists()
    assert "no paired comparison: problem.name" in (out / "report.md").read_text()


def test_pairs_differ_in_the_compared_setting_alone(tmp_path):
    """controller=a,b on seeds 0-2, plus b's runs from another sweep whose experiment set problem.tol=1e-3 (not
    on their command lines). Only runs alike in everything but the controller pair (how they were logged
    aside): a against the tol=1e-6 b runs, difference 1 on every seed."""
    sweep = tmp_path / "runs"
    job = 0
    for controller, tol, value in (("a", 1e-6, 10.0), ("b", 1e-6, 11.0), ("b", 1e-3, 50.0)):
        for seed in (0, 1, 2):
            make_job(sweep / str(job), {"controller": controller, "seed": seed},
                     {"seed": seed, "problem": {"name": "hs071", "tol": tol}, "controller": {"name": controller},
                      "logger": {"wandb": job % 2 == 0}},
                     {"status": "converged", "problem": "hs071", "objective": value + 0.1 * seed * seed})
            job += 1
    result = paired.pair_runs(find_runs([sweep]), "controller", "objective")
    assert result.n == 3 and result.mean_difference == pytest.approx(1.0)
    assert (result.baseline, result.candidate) == ("controller=a", "controller=b")


def test_report_of_runs_that_all_failed_is_an_error(tmp_path):
    for job in range(2):
        make_run(tmp_path / "sweep" / str(job), [f"problem.name=hs99{job}"],
                 {"status": "failed", "message": f"problem.name must be one of ... (job {job})"},
                 [{"step": 1, "objective": 1.0}])
    with pytest.raises(UserError, match=r"all 2 runs failed, nothing to report \(run 0: problem.name must be"):
        report([tmp_path / "sweep"], out=tmp_path / "rep")


# ---- issue 19, item 9: the console at 80 columns, files at full precision -------------------------------

BOUNDS = {"bala": 3191.593932953104, "mixing": 3191.60221390706, "classic_alm": 3191.5716459693617}


@pytest.fixture
def maxcut_sweep(tmp_path: Path) -> Path:
    """Three solvers on one graph, as `alm-bench solve maxcut FILE -m controller=...` leaves them."""
    graph = "'/data/a/rather/long/folder/of/graphs/from/the/gset/collection/G14.txt'"
    for job, (controller, bound) in enumerate(BOUNDS.items()):
        trace = [{"step": s, "objective": -bound - 100 / s**2, "bound": -bound - 500 / s**2, "eps_p": 2e-16,
                  "eps_d": 0.0, "eps_g": 10.0 ** -s, "max_eps": 10.0 ** -s, "max_violation": 5e-16,
                  "rho": 0.25, "wall_time_s": 0.2 * s * (job + 1)} for s in range(1, 7)]
        if controller == "mixing":
            for row in trace:
                del row["rho"]
        make_job(tmp_path / "mc" / str(job), {"problem": "maxcut", "problem.path": graph, "controller": controller},
                 {"seed": 0, "problem": {"path": graph.strip("'")}, "problem_kind": "maxcut"},
                 {"status": "converged", "problem": "G14", "objective": -bound, "max_violation": 5e-16,
                  "sdp_bound": bound, "cut_value": 3028.0 + job, "eps_p": 2e-16, "eps_d": 0.0, "eps_g": 7e-6,
                  "iterations": 34 - job, "wall_time_s": 2.1 * (job + 1)}, trace)
    return tmp_path / "mc"


def test_console_table_fits_80_columns_and_tells_the_bounds_apart(maxcut_sweep, tmp_path):
    from rich.console import Console

    console = Console(width=80, record=True, file=open(tmp_path / "console.txt", "w"))
    report([maxcut_sweep], out=tmp_path / "rep", console=console)
    table = console.export_text().split("report written")[0]  # that line is a path to copy: whole
    assert max(map(len, table.splitlines())) <= 80 and "…" not in table
    lines = [line.split() for line in table.splitlines() if line.split()[:1] in (["0"], ["1"], ["2"])]
    assert [line[1] for line in lines] == list(BOUNDS)
    assert {"3191.59", "3191.6", "3191.57"} <= set(table.split())  # one digit more would not be needed
    rows = list(csv.DictReader(open(tmp_path / "rep" / "runs.csv")))
    assert [float(r["sdp_bound"]) for r in rows] == list(BOUNDS.values())  # every digit, read back exactly
    assert rows[0]["folder"] == str((maxcut_sweep / "0").resolve())
    assert "3191.593932953104" in (tmp_path / "rep" / "report.md").read_text()


def test_console_shows_file_names_and_enough_digits_of_swept_values():
    assert tables._axis_cells(["'/a/b/G1.mat'", "'/a/b/G14.txt'"]) == ["G1.mat", "G14.txt"]
    assert tables._axis_cells(["8.003182717737431", "0.15871282488236954", "370.0334939670428"]) == \
        ["8.003", "0.1587", "370"]
    assert tables._axis_cells(["2", "10"]) == ["2", "10"]
    assert tables.distinct_format([1.00001, 1.00002]) == ".6g"


@pytest.mark.slow
def test_run_summary_prints_the_whole_run_folder_on_its_own_line(tmp_path):
    run_dir = tmp_path / "a-run-folder-with-a-name-long-enough-to-be-cut-at-eighty-columns" / "2026-12-04" / "x"
    out = run_cli("train", f"hydra.run.dir={run_dir}", env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    assert f"run folder: {run_dir}" in out.stderr.splitlines()
    assert max(len(line) for line in out.stderr.splitlines() if not line.startswith("run folder:")) <= 80


# ---- issue 19, item 8: plots -----------------------------------------------------------------------------

def test_each_run_keeps_its_colour_and_runs_without_values_are_left_out(maxcut_sweep):
    runs = find_runs([maxcut_sweep])
    style = plots.styles(runs)
    colours = {}
    for metric in ("objective", "rho"):
        fig = plots.figure(runs, metric, style=style)
        for line in fig.axes[0].lines:
            colours.setdefault(line.get_label(), set()).add(line.get_color())
    assert all(len(c) == 1 for c in colours.values()) and len(set.union(*colours.values())) == 3
    rho = plots.figure(runs, "rho", style=style)
    assert len(rho.axes[0].lines) == 2 and "2 of 3 runs" in rho._suptitle.get_text()  # mixing has no rho


def test_max_cut_plots_what_moves_on_log_axes(maxcut_sweep, tmp_path):
    runs = find_runs([maxcut_sweep])
    written = {p.stem for p in plots.write_plots(runs, tmp_path / "plots")}
    # eps_p (2e-16), eps_d (0), the violation (5e-16) and a constant rho are flat; eps_g repeats max_eps
    assert written == {"objective", "max_eps", "bound_gap"}
    gap = plots.figure(plots.with_bound_gap(runs), "bound_gap")
    left, right = gap.axes
    assert left.get_yscale() == "symlog"  # the best run's gap reaches 0
    assert left.get_xlabel().startswith("solver step") and right.get_xlabel() == "wall time (s)"
    assert plots.figure(runs, "max_eps").axes[0].get_yscale() == "log"


def test_zeros_get_a_symlog_axis_and_accuracy_says_which(tmp_path):
    folder = tmp_path / "runs" / "0"
    trace = [{"step": s, "epoch": 1.0, "max_violation": [0.3, 1e-3, 1e-9, 0.0][s - 1],
              "accuracy": 0.2 * s, "val_accuracy": math.nan if s % 2 else 0.1 * s, "wall_time_s": 0.5 * s}
             for s in range(1, 5)]
    make_run(folder, ["seed=0"], {"status": "converged", "objective": 1.0}, trace)
    runs = find_runs([tmp_path / "runs"])
    violation = plots.figure(runs, "max_violation").axes[0]
    assert violation.get_yscale() == "symlog" and violation.get_xlabel() == "training step"
    assert violation.yaxis.get_transform().linthresh == pytest.approx(1e-9)  # the 1e-9 tail stays visible
    assert plots.figure(runs, "accuracy").axes[0].get_ylabel() == "train-batch accuracy"
    held_out = plots.figure(runs, "val_accuracy").axes[0]
    assert held_out.get_ylabel().startswith("validation accuracy")
    assert list(held_out.lines[0].get_xdata()) == [2, 4]  # evaluated rows only, joined by a line


def test_by_colours_by_the_compared_setting(sweep):
    runs = find_runs([sweep])
    style = plots.styles(runs, "controller")
    by_controller = {}
    for run in runs:
        by_controller.setdefault(run.value("controller"), set()).add(style[run.path].colour)
    assert all(len(c) == 1 for c in by_controller.values()) and len(set.union(*by_controller.values())) == 2


@pytest.mark.slow
def test_report_cli_refuses_to_pair_different_problems(tmp_path):
    sweep = tmp_path / "hs"
    for job, (name, seed) in enumerate([("hs071", 0), ("hs071", 1), ("hs035", 0), ("hs035", 1)]):
        make_job(sweep / str(job), {"problem.name": name, "seed": seed}, {"seed": seed, "problem": {"name": name}},
                 {"status": "converged", "problem": name, "objective": 1.0 + job})
    out = run_cli("report", str(sweep), env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    assert "no paired comparison: problem.name, the one setting besides the seed that varies: its values are " \
           "different problems (hs071, hs035)" in out.stdout and "p =" not in out.stdout
    out = run_cli("report", str(sweep), "--by", "problem.name")
    assert out.returncode == 2 and out.stderr == ("alm-bench: error: --by problem.name: its values are different "
                                                  "problems (hs071, hs035); a paired comparison compares two "
                                                  "settings on the same problem\n")


def test_runs_on_different_problems_get_a_row_and_a_bound_gap_each(tmp_path):
    finals = {("G1", "bala"): 12083.2, ("G1", "mixing"): 12083.19, ("G14", "bala"): 3191.6, ("G14", "mixing"): 3191.59}
    for job, ((graph, controller), final) in enumerate(finals.items()):
        trace = [{"step": s, "bound": -final - 10.0 / s**3, "max_eps": 10.0 ** -s, "wall_time_s": 0.1 * s}
                 for s in range(1, 5)]
        make_job(tmp_path / "sw" / str(job), {"problem.path": f"/g/{graph}.mat", "controller": controller},
                 {"seed": 0, "problem": {"path": f"/g/{graph}.mat"}, "problem_kind": "maxcut"},
                 {"status": "converged", "problem": graph, "sdp_bound": final}, trace)
    runs = plots.with_bound_gap(find_runs([tmp_path / "sw"]))
    last_gap = {r.problem[0] + "/" + r.value("controller"): r.trace[-1]["bound_gap"] for r in runs}
    # each graph's reference is its own best final bound (mixing's: the larger of the two negated bounds)
    assert last_gap == pytest.approx({"G1/bala": 0.01, "G1/mixing": 0.0, "G14/bala": 0.01, "G14/mixing": 0.0},
                                     abs=1e-9)
    fig = plots.figure(runs, "bound_gap")
    assert len(fig.axes) == 4 and [ax.get_ylabel().split("\n")[0] for ax in fig.axes[::2]] == ["G1", "G14"]


def test_a_problem_without_equalities_is_left_out_of_the_lambda_plot(tmp_path):
    for job, (name, lam) in enumerate((("hs071", [0.17, 0.16, 0.16]), ("hs035", [0.0, 0.0, 0.0]))):
        trace = [{"step": s + 1, "lambda_norm": v, "mu_norm": 1.0 + s, "wall_time_s": s} for s, v in enumerate(lam)]
        make_run(tmp_path / "sw" / str(job), [f"problem.name={name}"], {"status": "converged", "problem": name},
                 trace, problem="hs")
    runs = find_runs([tmp_path / "sw"])
    fig = plots.figure(runs, "lambda_norm")
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 1 and "1 of 2 runs" in fig._suptitle.get_text()
    assert fig.axes[0].get_yscale() == "linear"  # 0.16-0.17 spans no decade: no log axis
    assert len(plots.figure(runs, "mu_norm").axes) == 4  # both runs have inequalities: a row each


def test_runs_of_two_sweeps_are_told_apart_in_the_console_table(sweep, tmp_path):
    other = tmp_path / "other"
    make_run(other / "0", ["controller=unconstrained", "seed=1"], {"status": "converged", "objective": 1.0},
             [{"step": 1, "objective": 1.0}])
    runs = find_runs([sweep, other])
    assert tables.run_names(runs)[0] == "sweep/0" and tables.run_names(runs)[-1] == "other/0"
    assert tables.run_names(runs[:2]) == ["0", "1"]
