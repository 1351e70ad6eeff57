"""Smooth and conic runs checkpoint their loop state after every whole iteration: a run stopped early and
resumed with resume= ends exactly where the uninterrupted run ends, with one gapless trace."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from alm_bench.errors import UserError
from alm_bench.task import run
from conftest import (DATA, SLOW, complete_rows, compose_config, read_summary, run_cli, run_loop, run_task,
                      start_slow_run, wait_for_rows)


def stopped_and_resumed(tmp_path: Path, budget_key: str, stop_at: int, *overrides: str) -> tuple[dict, dict]:
    whole = run_task(tmp_path / "whole", *overrides)
    run_task(tmp_path / "stopped", *overrides, f"{budget_key}={stop_at}")
    resumed = run_task(tmp_path / "resumed", *overrides, f"resume={tmp_path / 'stopped'}")
    assert whole["iterations"] > stop_at, "the run must go past the stop for this test to mean anything"
    return whole, resumed


def assert_same_run(tmp_path: Path, whole: dict, resumed: dict, columns: tuple[str, ...]) -> None:
    assert resumed["status"] == whole["status"] and resumed["iterations"] == whole["iterations"]
    a, b = complete_rows(tmp_path / "whole"), complete_rows(tmp_path / "resumed")
    assert [r["step"] for r in b] == [str(i) for i in range(1, whole["iterations"] + 1)]
    for column in columns:
        assert [r[column] for r in a] == [r[column] for r in b], column


def test_smooth_run_resumes_exactly(tmp_path):
    overrides = ("problem=hs", "problem.name=hs071", "controller=classic_alm")
    whole, resumed = stopped_and_resumed(tmp_path, "controller.max_outer_iterations", 3, *overrides)
    assert_same_run(tmp_path, whole, resumed, ("objective", "max_violation", "rho"))
    assert resumed["objective"] == whole["objective"] and resumed["multipliers"] == whole["multipliers"]
    assert abs(resumed["objective"] - 17.0140173) < 1e-6


MCP100 = ("problem=sdp", f"problem.path={DATA / 'mcp100.dat-s'}", "problem.tol=1e-5")
G14 = ("problem=maxcut", f"problem.path={DATA / 'G14.txt'}", "problem.tol=1e-4", "problem.rounding_trials=1",
       "controller.log_every=10")   # mixing: a row every 10 sweeps, so the run has rows to stop and resume at


# control2: BALA's subproblems go to the interior-point method, after which FISTA gets a short budget: what the
# loop remembers of that must survive the checkpoint (it restarted afresh and the resumed run went another way).
CONTROL2 = ("problem=sdp", f"problem.path={DATA / 'control2.dat-s'}", "problem.tol=1e-4")


@pytest.mark.parametrize("controller, problem, value, stop_at", [
    ("bala", MCP100, 226.157351, 2), ("classic_alm", MCP100, 226.157351, 2),
    pytest.param("mixing", G14, 3191.5668, 2, marks=pytest.mark.slow),   # 2.3 s
    pytest.param("bala", CONTROL2, 8.3, 20, marks=pytest.mark.slow),     # 9 s
])
def test_conic_run_resumes_exactly(tmp_path, controller, problem, value, stop_at):
    budget = "controller.max_outer_iterations" if controller == "classic_alm" else "controller.max_iterations"
    whole, resumed = stopped_and_resumed(tmp_path, budget, stop_at, *problem, f"controller={controller}")
    assert_same_run(tmp_path, whole, resumed, ("objective", "bound", "max_eps"))
    assert resumed["sdp_bound"] == whole["sdp_bound"]
    assert abs(resumed["sdp_bound"] - value) / value < 5e-4   # the value in the data README, to the run's tol


def test_resume_refuses_a_problem_file_whose_data_changed(tmp_path):
    """The config names the file, not its contents: a checkpoint records the data's fingerprint, and a file
    edited since is refused with one line naming it, before any work (and an unchanged copy resumes)."""
    graph = tmp_path / "G14.txt"
    graph.write_text((DATA / "G14.txt").read_text())
    overrides = ("problem=maxcut", f"problem.path={graph}", "problem.tol=1e-4", "problem.rounding_trials=1",
                 "controller=bala")
    run_task(tmp_path / "stopped", *overrides, "controller.max_iterations=2")
    assert run_task(tmp_path / "same", *overrides, "controller.max_iterations=3",
                    f"resume={tmp_path / 'stopped'}")["iterations"] == 3
    header, first, *rest = graph.read_text().splitlines()
    i, j, w = first.split()
    graph.write_text("\n".join([header, f"{i} {j} {int(w) + 1}", *rest]) + "\n")
    with pytest.raises(UserError, match=f"resume: {graph} no longer holds the problem"):
        run_task(tmp_path / "edited", *overrides, f"resume={tmp_path / 'stopped'}")
    assert not (tmp_path / "edited" / "trace.csv").exists()


def test_a_converged_conic_run_continues_to_a_smaller_tolerance(tmp_path):
    overrides = ("problem=sdp", f"problem.path={DATA / 'mcp100.dat-s'}", "controller=bala")
    first = run_task(tmp_path / "first", *overrides, "problem.tol=1e-3")
    second = run_task(tmp_path / "second", *overrides, "problem.tol=1e-7", f"resume={tmp_path / 'first'}")
    assert first["status"] == second["status"] == "converged"
    assert second["iterations"] > first["iterations"] and max(second["eps_p"], second["eps_g"]) <= 1e-7


def test_scs_and_auglag_runs_refuse_resume_before_any_work(tmp_path):
    for overrides in (("problem=sdp", f"problem.path={DATA / 'mcp100.dat-s'}", "controller=scs"),
                      ("problem=hs", "controller=auglag")):
        with pytest.raises(UserError, match="resume="):
            run(compose_config(*overrides, f"resume={tmp_path}"), tmp_path / "new")
        assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_sigint_then_resume_finishes_the_run(tmp_path):
    """The CLI path: a signal mid-run leaves a checkpoint; resume= goes on from it to a longer budget."""
    stopped = tmp_path / "stopped"
    proc = start_slow_run(stopped)
    wait_for_rows(stopped, 2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    summary = read_summary(stopped)
    assert summary["status"] == "interrupted" and f"resume={stopped}" in summary["message"]
    done = len(complete_rows(stopped))
    result = run_cli("train", *SLOW[:-2], f"controller.max_outer_iterations={done + 2}", SLOW[-1],
                     f"resume={stopped}", f"hydra.run.dir={tmp_path / 'resumed'}", cwd=Path(__file__).parent)
    assert result.returncode == 0, result.stderr
    rows = complete_rows(tmp_path / "resumed")
    assert len(rows) == done + 2 and read_summary(tmp_path / "resumed")["iterations"] == done + 2


def test_a_loop_called_without_a_run_folder_keeps_no_checkpoint():
    """Benchmarks and notebooks call the loops with output_dir=None: they must run, writing nothing."""
    from alm_bench.controllers.classic_alm import ClassicALM
    from alm_bench.problems.hock_schittkowski import HockSchittkowski

    summary, _ = run_loop(HockSchittkowski("hs071"), ClassicALM())
    assert summary["status"] == "converged" and abs(summary["objective"] - 17.0140173) < 1e-6


def test_a_maxcut_solve_without_a_run_folder_rounds_but_writes_no_cut_file():
    from alm_bench.conic.solvers.mixing import MixingMethod
    from alm_bench.conic.problems import MaxCut

    summary, _ = run_loop(MaxCut(str(DATA / "G14.txt"), tol=1e-3, rounding_trials=2), MixingMethod())
    assert summary["status"] == "converged" and "cut_file" not in summary
    assert 0.878 * summary["sdp_bound"] <= summary["cut_value"] <= summary["sdp_bound"]


def test_the_resume_hint_names_only_a_folder_that_holds_a_checkpoint(tmp_path):
    from alm_bench import checkpoint

    assert checkpoint.resume_hint(None) == "" and checkpoint.resume_hint(tmp_path) == ""
    checkpoint.save_loop(tmp_path, "smooth", {"step": 1})
    assert checkpoint.resume_hint(tmp_path) == f"; continue with resume={tmp_path}"
