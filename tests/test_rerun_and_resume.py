"""Starting from a run folder's own composed config, through the installed `alm-bench` script: a rerun
(--config-dir <run>/.hydra --config-name config) runs that config exactly, and `resume=<run>` needs nothing
retyped, allowing only the documented budget, logging and device changes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alm_bench.task.from_run import plan, run_folder
from alm_bench.errors import UserError
from conftest import read_summary, read_trace, run_cli

pytestmark = pytest.mark.slow   # each test starts the command a few times (2-4 s each)


def only_run(outputs: Path, pattern: str = "*") -> Path:
    runs = sorted((outputs / "runs").glob(f"*/{pattern}"))
    assert runs, f"no run folder matching {pattern}"
    return runs[-1]


def test_a_rerun_from_the_run_folder_runs_that_config_exactly(outputs):
    first = run_cli("train", "problem=hs", "problem.name=hs035", "seed=3", script=True)
    assert first.returncode == 0, first.stderr
    original = only_run(outputs)
    saved = original / ".hydra" / "config.yaml"
    # as if conf/ had changed since: the rerun must follow the run's own record, not today's defaults
    config = yaml.safe_load(saved.read_text())
    config["controller"]["rho"] = 7.5
    saved.write_text(yaml.safe_dump(config, sort_keys=False))

    for flags in (["--config-dir", f"{original}/.hydra", "--config-name", "config"],   # as the README says
                  ["--config-path", str(original / ".hydra"), "--config-name", "config"]):
        out = run_cli("train", *flags, script=True)
        assert out.returncode == 0, out.stderr
        rerun = only_run(outputs)
        assert rerun != original and rerun.name.endswith("_hs_classic_alm"), rerun   # named as the original
        assert yaml.safe_load((rerun / ".hydra" / "config.yaml").read_text()) == config
        summary = read_summary(rerun)
        assert summary["seed"] == 3 and summary["problem"] == "hs035" and summary["controller"] == "classic_alm"
        assert read_trace(rerun)[0]["rho"] == "7.5"   # the saved (edited) rho, not conf/'s ALGENCAN rule

    out = run_cli("train", "--config-dir", f"{original}/.hydra", "--config-name", "hydra", script=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "a run folder holds one config, config.yaml" in out.stderr


def test_resume_reads_the_run_config_and_allows_only_budget_changes(outputs):
    first = run_cli("train", "problem=hs", "problem.name=hs071", "seed=3", "controller.max_outer_iterations=2",
                    script=True)
    assert first.returncode == 0, first.stderr
    stopped = only_run(outputs)
    assert read_summary(stopped)["status"] == "max_iterations"

    changed = run_cli("train", f"resume={stopped}", "seed=4", script=True)   # not a budget: refused
    assert changed.returncode == 2 and changed.stderr.count("\n") == 1 and changed.stdout == ""
    assert "(seed: 3 there, 4 here)" in changed.stderr

    out = run_cli("train", f"resume={stopped}", "controller.max_outer_iterations=50", script=True)  # nothing retyped
    assert out.returncode == 0, out.stderr
    resumed = only_run(outputs)
    summary = read_summary(resumed)
    assert summary["status"] == "converged" and summary["seed"] == 3 and summary["problem"] == "hs071"
    assert abs(summary["objective"] - 17.0140173) < 1e-6
    assert [int(r["step"]) for r in read_trace(resumed)] == list(range(1, summary["iterations"] + 1))  # no gap

    retyped = run_cli("train", "problem=hs", "problem.name=hs071", "seed=3", f"resume={stopped}",
                      "controller.max_outer_iterations=50", script=True)   # the old habit still works
    assert retyped.returncode == 0 and read_summary(only_run(outputs))["objective"] == summary["objective"]


def test_resume_of_a_folder_that_is_no_run_is_one_line(tmp_path):
    out = run_cli("train", f"resume={tmp_path}", script=True)
    assert out.returncode == 2 and out.stderr.strip() == \
        f"alm-bench: error: resume={tmp_path}: not a run folder (no .hydra/config.yaml in it)"


def test_plan_leaves_ordinary_commands_and_config_folders_of_ones_own_alone(tmp_path):
    (tmp_path / "my_conf" / "problem").mkdir(parents=True)
    for args in (["problem=hs"], ["--config-dir", str(tmp_path / "my_conf"), "problem=disc"], ["resume=null"]):
        assert plan(args) == (None, args)
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "hydra.yaml"):
        (run / ".hydra" / name).write_text("{}\n")
    assert run_folder(run) == run == run_folder(run / ".hydra")
    assert plan(["-cd", str(run / ".hydra"), "-cn", "config", "+problem.radius=2", "seed=1"]) == \
        (run, ["++problem.radius=2", "seed=1"])
    with pytest.raises(UserError, match="name different run folders"):
        plan(["--config-dir", str(run), f"resume={tmp_path}"])
