"""The one Hydra task behind every command: config -> problem x controller x device -> loop -> trace -> summary.

`run(cfg, output_dir)` is plain Python (tests call it directly); `main` is its @hydra.main wrapper,
which the CLI calls after rewriting sys.argv, so -m, --cfg, sweeps and launchers all work.
"""

from __future__ import annotations

import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from alm_bench.errors import ConfigError, UserError, one_line, require
from alm_bench.task import run_stamp
from alm_bench.tracking import ConsoleTracker, FileTracker, RunInfo, Trackers
from alm_bench.tracking.files import SUMMARY_FILE, write_json_atomic

CONFIG_PATH = "pkg://alm_bench.conf"
run_stamp.register()  # before Hydra composes hydra.run.dir


def build(node: DictConfig, field: str) -> Any:
    """Instantiate `node` (which names its class in _target_); any failure is one line naming `field`."""
    if "_target_" not in node:
        raise ConfigError(f"{field}._target_ is missing: name the class to build, e.g. {field}._target_=my_module.MyClass")
    try:
        return hydra.utils.instantiate(node, _convert_="all")
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        if isinstance(cause, ImportError):
            root = cause.__cause__ or cause
            raise ConfigError(f"{field}._target_: cannot import {node._target_!r} ({root}); the module must be "
                              f"importable from the current folder or PYTHONPATH") from None
        detail = one_line(cause) if cause else str(err).splitlines()[0]
        hint = ""
        if isinstance(cause, TypeError) and "unexpected keyword" in str(cause):
            hint = f"; to start from an empty {field} config use {field}=custom" if field == "problem" else ""
        raise ConfigError(f"{field}: cannot build {node._target_!r} ({detail}){hint}") from None


def check_compatible(problem: Any, controller: Any, choices: dict[str, str]) -> None:
    kind = getattr(problem, "kind", None)
    accepts = getattr(controller, "accepts", ())
    if kind not in accepts:
        raise UserError(f"controller={choices.get('controller', type(controller).__name__)} cannot solve "
                        f"problem={choices.get('problem', type(problem).__name__)}: the controller takes "
                        f"{'/'.join(accepts)} problems, the problem is {kind}")


def make_trackers(cfg: DictConfig) -> Trackers:
    trackers: list = [FileTracker(), ConsoleTracker()]
    wandb_cfg = cfg.logger.get("wandb") if "logger" in cfg else None
    if wandb_cfg:
        from alm_bench.tracking.wandb_logger import WandbTracker  # imports wandb only when asked for

        trackers.append(WandbTracker(**OmegaConf.to_container(wandb_cfg, resolve=True)))
    return Trackers(trackers)


def run(cfg: DictConfig, output_dir: Path, *, choices: dict[str, str] | None = None,
        group: str | None = None, name: str | None = None) -> dict[str, Any]:
    """Run one job; writes trace.csv and summary.json into output_dir and returns the summary."""
    # Imported here, not above: they bring torch, which `train --help`, `--cfg job` and `--info` never need.
    from alm_bench.runners import RunContext, loop_for
    from alm_bench.runners.signals import stop_signals
    from alm_bench.task.device import describe, resolve_device
    from alm_bench.task.resume import check_resume
    from alm_bench.task.seeding import seed_everything

    choices = choices or {}
    require(isinstance(cfg.seed, int), "seed", "an integer", cfg.seed)
    console = Console(stderr=True)
    device = resolve_device(cfg.device.name)
    seed_everything(cfg.seed)
    problem = build(cfg.problem, "problem")
    controller = build(cfg.controller, "controller")
    check_compatible(problem, controller, choices)
    if cfg.get("resume"):
        check_resume(cfg, Path(cfg.resume), problem.kind, controller)
    console.print(f"device: {describe(device)} (device={cfg.device.name})")   # once the input is known good

    # Under torchrun only rank 0 traces (the loop keeps every rank's controller identical).
    trackers = make_trackers(cfg) if int(os.environ.get("RANK", "0")) == 0 else Trackers([])
    label = name or f"{choices.get('problem', problem.name)}/{choices.get('controller', type(controller).__name__)}"
    trackers.start(RunInfo(output_dir=output_dir, name=label, group=group, job_type=cfg.get("job_type", "train"),
                           config=OmegaConf.to_container(cfg, resolve=True),
                           total_steps=getattr(controller, "max_outer_iterations", None)))
    summary: dict[str, Any] = {"status": "failed", "message": "the run stopped on an unexpected error"}
    try:
        ctx = RunContext(output_dir=output_dir, device=device, seed=cfg.seed,
                         resume=Path(cfg.resume) if cfg.get("resume") else None)
        with stop_signals():
            summary = loop_for(problem, controller)(problem, controller, trackers, ctx)
        summary.update(seed=cfg.seed, device=str(device), problem=problem.name,
                       controller=choices.get("controller", type(controller).__name__))
    finally:
        trackers.finish(summary)
    if summary.get("message"):
        console.print(summary["message"], style="bold red" if summary["status"] != "converged" else None)
    return summary


def _failed_job(output_dir: Path, err: BaseException) -> dict[str, Any]:
    """A sweep job that failed: say so in one line and in its folder, and let the sweep go on."""
    message = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
    if not isinstance(err, UserError) and os.environ.get("HYDRA_FULL_ERROR") == "1":
        traceback.print_exception(err)
    print(f"alm-bench: error: {message}", file=sys.stderr)
    summary = {"status": "failed", "message": message}
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output_dir / SUMMARY_FILE, summary)
    return summary


HYDRA_RECORD = {"config.yaml", "hydra.yaml", "overrides.yaml"}   # what Hydra writes before the job starts


def discard_unstarted(output_dir: Path) -> None:
    """A refused command leaves no run folder behind: remove Hydra's record of the job and the folder (and
    its date folder) when nothing else is in them, i.e. when the run never started."""
    record = output_dir / ".hydra"
    if not record.is_dir() or {p.name for p in output_dir.iterdir()} != {".hydra"} \
            or not {p.name for p in record.iterdir()} <= HYDRA_RECORD:
        return
    shutil.rmtree(record, ignore_errors=True)
    for folder in (output_dir, output_dir.parent):
        try:
            folder.rmdir()
        except OSError:   # not empty (other runs of the day, or a folder the user named): keep it
            break


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
def main(cfg: DictConfig) -> float | None:
    from alm_bench.runners.stopping import exit_code

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    output_dir = Path(hc.runtime.output_dir)
    try:
        summary = run(cfg, output_dir, choices=dict(hc.runtime.choices),
                      group=Path(hc.sweep.dir).name if multirun else None,
                      name=hc.job.override_dirname or None if multirun else None)
    except UserError as err:
        if not multirun:
            discard_unstarted(output_dir)
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                traceback.print_exception(err)
            print(f"alm-bench: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        summary = _failed_job(output_dir, err)
    except Exception as err:  # a bug or a crash in one job must not take the rest of the sweep down
        if not multirun:
            raise
        summary = _failed_job(output_dir, err)
    if not multirun and exit_code(summary["status"]):
        raise SystemExit(exit_code(summary["status"]))
    value = summary.get(cfg.get("sweep_metric", "objective"))
    return float(value) if isinstance(value, (int, float)) else None  # what a sweeper (e.g. Optuna) optimises
