"""The `alm-bench` command as a user runs it: train, sweeps, --cfg, help, errors, completion, plug-ins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alm_bench.completion import complete_override, config_choices
from conftest import REPO, read_summary, run_cli


@pytest.mark.slow
def test_version():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == "alm-bench 0.1.0"


@pytest.mark.slow
def test_help_lists_config_groups():
    out = run_cli("--help")
    assert out.returncode == 0
    for text in ("train", "problem:", "controller:", "classic_alm", "hs"):
        assert text in out.stdout, text


@pytest.mark.slow
def test_train_default_solves_the_seed_toy(tmp_path):
    run_dir = tmp_path / "run"
    out = run_cli("train", f"hydra.run.dir={run_dir}")
    assert out.returncode == 0, out.stderr
    assert "device: cpu (device=auto)" in out.stderr
    summary = read_summary(run_dir)
    assert summary["status"] == "converged" and abs(summary["x"][0] - 3.0) < 1e-4
    composed = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert composed["seed"] == 0 and composed["problem"]["instance"] == "toy"
    header = (run_dir / "trace.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["step", "objective", "max_violation"] and "rho" in header


@pytest.mark.slow
def test_train_hs071_reaches_published_optimum(tmp_path):
    out = run_cli("train", "problem=hs", "problem.name=hs071", "controller=classic_alm",
                  f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    summary = read_summary(tmp_path)
    assert abs(summary["objective"] - 17.0140173) <= 1e-6 * 17.0140173


@pytest.mark.slow
def test_default_run_folder_layout(outputs):
    out = run_cli("train", "problem=hs", "problem.name=hs035")
    assert out.returncode == 0, out.stderr
    (run_dir,) = (outputs / "runs").glob("*/*_hs_classic_alm")
    assert (run_dir / "summary.json").exists() and (run_dir / ".hydra" / "overrides.yaml").exists()


@pytest.mark.slow
def test_multirun_puts_both_jobs_in_one_sweep_folder(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_cli("train", "-m", "problem=hs", "problem.name=hs071,hs035", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr
    assert (sweep / "multirun.yaml").exists()
    objectives = {read_summary(sweep / job)["problem"]: read_summary(sweep / job)["objective"] for job in ("0", "1")}
    assert objectives["hs071"] == pytest.approx(17.0140173, rel=1e-6)
    assert objectives["hs035"] == pytest.approx(1 / 9, rel=1e-6)


@pytest.mark.slow
def test_cfg_job_prints_the_composed_config_without_running(outputs):
    out = run_cli("train", "--cfg", "job", "controller.rho=10")
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    assert cfg["controller"]["rho"] == 10 and cfg["problem"]["_target_"].endswith("QuadraticProgram")
    assert not outputs.exists()


@pytest.mark.slow
def test_hydra_help_lists_groups():
    out = run_cli("train", "--help")
    assert out.returncode == 0
    assert "Config groups" in out.stdout
    (controllers,) = [line for line in out.stdout.splitlines() if line.startswith("controller: ")]
    assert "classic_alm" in controllers.split(": ")[1].split(", ")


@pytest.mark.slow
def test_unknown_group_option_lists_the_choices():
    out = run_cli("train", "controller=no_such_controller")
    assert out.returncode != 0
    assert "no_such_controller" in out.stderr and "classic_alm" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("override, message", [
    ("controller.rho=-1", "controller.rho must be > 0, got -1"),
    ("controller.feasibility_tol=-1e-3", "controller.feasibility_tol must be > 0"),
    ("problem.name=hs999", "problem.name must be one of"),
    ("device=cuda", "device=cuda was asked for"),
])
def test_invalid_value_is_one_clear_line(override, message, tmp_path):
    args = ["problem=hs"] if override.startswith("problem.") else []
    out = run_cli("train", *args, override, f"hydra.run.dir={tmp_path}")
    if override == "device=cuda" and "cuda" in out.stdout + out.stderr and out.returncode == 0:
        pytest.skip("this machine has CUDA")
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("alm-bench: error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_user_problem_plugs_in_without_touching_the_package(tmp_path):
    out = run_cli("train", "problem=custom", "problem._target_=my_problem.ClosestPointInDisc",
                  "+problem.radius=2", f"hydra.run.dir={tmp_path}", cwd=REPO / "examples")
    assert out.returncode == 0, out.stderr
    summary = read_summary(tmp_path)
    assert summary["status"] == "converged"
    assert summary["objective"] == pytest.approx(summary["reference_objective"], rel=1e-8)


@pytest.mark.slow
def test_user_config_file_via_config_dir(tmp_path):
    conf = tmp_path / "my_conf" / "problem"
    conf.mkdir(parents=True)
    (conf / "disc.yaml").write_text("_target_: my_problem.ClosestPointInDisc\nradius: 0.5\n")
    out = run_cli("train", "--config-dir", str(tmp_path / "my_conf"), "problem=disc",
                  f"hydra.run.dir={tmp_path / 'run'}", cwd=REPO / "examples")
    assert out.returncode == 0, out.stderr
    assert read_summary(tmp_path / "run")["x"][0] == pytest.approx(read_summary(tmp_path / "run")["x"][1], abs=1e-7)


def test_completion_of_groups_and_options():
    assert "controller=" in complete_override("contr")
    assert complete_override("controller=clas") == ["controller=classic_alm"]
    assert set(config_choices()) >= {"problem", "controller", "device", "logger", "experiment"}


@pytest.mark.slow
def test_shell_completion_through_the_installed_command():
    exe = Path(sys.executable).with_name("alm-bench")
    if not exe.exists():
        pytest.skip("alm-bench console script not installed next to this python")
    env = {**os.environ, "_ALM_BENCH_COMPLETE": "bash", "COMP_LINE": "alm-bench train problem="}
    out = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split()[0] == "plain" and {"hs", "quadratic"} <= set(out.stdout.split())


@pytest.mark.slow
def test_debug_shows_the_traceback_of_an_input_error(tmp_path):
    out = run_cli("--debug", "train", "controller.rho=-1", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    assert "Traceback" in out.stderr and out.stderr.rstrip().endswith("controller.rho must be > 0, got -1")


@pytest.mark.slow
def test_hydra_info():
    out = run_cli("train", "--info")
    assert out.returncode == 0 and "Hydra" in out.stdout and "alm_bench.conf" in out.stdout


def test_run_folder_stamp_is_shared_by_torchrun_ranks(monkeypatch):
    from alm_bench.task.run_stamp import run_stamp

    single = run_stamp()
    assert len(single.split("/")[1]) == len("10-16-28-457951")  # microseconds: parallel runs get their own folder
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "abc")
    monkeypatch.setenv("LOCAL_RANK", "1")
    # every rank is a child of the same agent: same parent pid and start time -> the same folder
    assert run_stamp() == run_stamp() and run_stamp().endswith(f"-torchrun{os.getppid()}")


@pytest.mark.slow
def test_an_unknown_group_option_is_one_line_and_exit_status_2(tmp_path):
    """As the README says for every bad input: one line naming it and the choices, exit status 2 (Hydra's own
    message spans lines and exits 1), also inside a sweep's comma list."""
    for args in (["train", "controller=nope"], ["train", "-m", "controller=classic_alm,nope"]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines == ["alm-bench: error: controller=nope: no such option; controller is one of auglag, bala, "
                         "clarabel, classic_alm, csdp, ema_alm, mixing, scs, unconstrained"]
    assert not (tmp_path / "outputs").exists()
