"""What a command leaves on disk, through the installed script: a run folder without an empty alm-bench.log,
no run folder at all for a refused command, one line (and no sweep folder) for SLURM without a cluster."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys

import pytest

from alm_bench.task.launcher_check import SLURM_LAUNCHERS, slurm_missing
from conftest import REPO, run_cli


@pytest.mark.slow
def test_a_run_folder_holds_the_run_and_no_empty_log(outputs):
    out = run_cli("train", script=True)
    assert out.returncode == 0, out.stderr
    (run,) = (outputs / "runs").glob("*/*_quadratic_classic_alm")
    assert sorted(p.name for p in run.iterdir()) == [".hydra", "checkpoints", "summary.json", "trace.csv"]


@pytest.mark.slow
def test_a_refused_command_leaves_no_run_folder(outputs):
    (outputs / "runs" / "2000-01-01" / "an_earlier_run").mkdir(parents=True)   # other runs are left alone
    out = run_cli("train", "controller.rho=-1", script=True)
    assert out.returncode == 2 and out.stderr == "alm-bench: error: controller.rho must be > 0, got -1\n"
    assert [p.relative_to(outputs).as_posix() for p in outputs.rglob("*")] == \
        ["runs", "runs/2000-01-01", "runs/2000-01-01/an_earlier_run"]


def test_the_slurm_check_names_the_missing_cluster():
    (target,) = SLURM_LAUNCHERS
    assert "no srun on the PATH" in slurm_missing(target, which=lambda name: None)
    assert slurm_missing(target, which=lambda name: f"/usr/bin/{name}") is None
    assert slurm_missing("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
                         which=lambda name: None) is None


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
                    reason="the submitit launcher plugin is not installed (pip install 'alm-bench[sweeps]')")
def test_slurm_without_a_cluster_is_one_line_and_no_sweep_folder(outputs, tmp_path):
    bin_dir = tmp_path / "bin"   # a PATH with python but certainly without srun
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    for args in (["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], ["hydra/launcher=submitit_slurm"]):
        out = run_cli("train", "-m", *args, "seed=1,2", script=True, env={"PATH": str(bin_dir)})
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and "needs a SLURM cluster" in out.stderr and "no srun" in out.stderr
        assert not outputs.exists() or not any(outputs.rglob("*"))


def test_the_synthetic_demo_is_described_by_what_it_takes():
    """README said 'seconds on a CPU' for a run of 280 steps (about a minute on 2 cores); it says so now."""
    from conftest import compose_config
    from alm_bench.task.job import build

    problem = build(compose_config("problem=synthetic").problem, "problem")
    data = problem.load_data()
    steps_per_epoch = len(data.train) // problem.batch_size   # the last partial batch is dropped
    assert problem.total_steps(steps_per_epoch) == 280
    line = next(l for l in (REPO / "README.md").read_text().splitlines()
                if l.startswith("alm-bench train problem=synthetic controller=ema_alm"))
    assert "1-2 min on 2 CPU cores (4 epochs)" in line and "seconds" not in line
