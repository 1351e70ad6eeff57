"""Hydra callback for sweeps: one line per finished job, and a table of every job when the sweep ends."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape

from alm_bench.tracking.files import SUMMARY_FILE


QUOTED_PATH = re.compile(r"'/(?:[^'/]*/)*([^'/]+)'")


def _console() -> Console:
    # Made per call: the callback is pickled to launcher workers, and a Console holds a lock.
    return Console(stderr=True)


class SweepSummary(Callback):

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        job = config.hydra.job
        summary_file = Path(config.hydra.runtime.output_dir) / SUMMARY_FILE
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
        if job_return.status != JobStatus.COMPLETED:
            error = job_return._return_value
            result = f"[bold red]FAILED[/]: {escape(f'{type(error).__name__}: {error}')}"
        elif summary.get("status") == "failed":
            result = f"[bold red]FAILED[/]: {escape(str(summary.get('message', '')))}"
        else:
            value = job_return.return_value
            metric = config.get("sweep_metric", "objective")
            result = f"{summary.get('status', 'done')}, {metric}={value:.8g}" if isinstance(value, float) \
                else summary.get("status", "done")
        # a file given by its absolute path (solve ... FILE) shows its name; the table and runs.csv have the rest
        overrides = QUOTED_PATH.sub(r"\1", job.override_dirname or "(no overrides)")
        _console().print(f"{escape(f'[job {job.num}]')} {escape(overrides)}: {result}", soft_wrap=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from alm_bench.errors import UserError
        from alm_bench.report import tables
        from alm_bench.report.runs import find_runs

        console = _console()
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            runs = find_runs([sweep_dir])
        except UserError as err:
            console.print(f"sweep {sweep_dir}: {err}", soft_wrap=True)
            return
        if config.get("logger", {}).get("wandb"):
            log_sweep_table(config, sweep_dir, runs)
        failed = [r for r in runs if r.summary.get("status") == "failed"]
        metric = str(config.get("sweep_metric", "objective"))
        best = best_run(runs, metric, str(config.hydra.sweeper.get("direction", "minimize")))
        tuned = (sweep_dir / TUNED).exists()
        console.print(f"sweep {sweep_dir}: {len(runs) - len(failed)} of {len(runs)} jobs ran", soft_wrap=True)
        console.print(tables.rich_table(runs, "", extra=(metric,), mark=best if tuned else None,
                                        width=console.width))
        if tuned and best is not None:
            console.print(tuned_line(sweep_dir / TUNED, metric, best), soft_wrap=True, markup=False)
        if len(failed) < len(runs):
            console.print(f"compare them: alm-bench report {sweep_dir}", soft_wrap=True)
        if failed:
            names = ", ".join(f"job {r.path.name} ({r.summary.get('message', '')})" for r in failed)
            console.print(f"[bold red]{len(failed)} job(s) failed:[/] {escape(names)}", soft_wrap=True)
            raise SystemExit(1)  # the sweep ran to the end, but its exit status says not all is well


TUNED = "optimization_results.yaml"   # what the Optuna sweeper writes before the sweep's end


def best_run(runs, metric: str, direction: str):
    """The run a sweeper would pick: the best finite `metric` among the runs that did not fail."""
    scored = [(r.metric(metric), k, r) for k, r in enumerate(runs)
              if r.summary.get("status") != "failed" and math.isfinite(r.metric(metric))]
    if not scored:
        return None
    pick = max if direction.lower().startswith("max") else min
    return pick(scored, key=lambda s: (s[0], -s[1]) if pick is max else (s[0], s[1]))[2]


def tuned_line(results: Path, metric: str, best) -> str:
    """The sweeper's answer in one line: its best value and parameters, and the run (starred in the table)."""
    saved = yaml.safe_load(results.read_text()) or {}
    params = saved.get("best_params") or {}
    value = saved.get("best_value", best.summary.get(metric))
    settings = " ".join(f"{k}={v}" for k, v in params.items()) or best.label
    return f"best {metric}={value} with {settings} (job {best.path.name}: {best.path})"


def log_sweep_table(config: DictConfig, sweep_dir: Path, runs) -> None:
    """One W&B run in the sweep's group holding the table of every job (so the sweep reads as one table)."""
    import logging

    from alm_bench.report import tables

    try:
        import wandb

        settings = dict(config.logger.wandb)
        run = wandb.init(project=settings.get("project"), entity=settings.get("entity"),
                         mode=settings.get("mode") or "offline", dir=str(sweep_dir), group=sweep_dir.name,
                         job_type="sweep_summary", name=f"{sweep_dir.name} summary", reinit="finish_previous",
                         settings=wandb.Settings(init_timeout=settings.get("init_timeout", 30), silent=True))
        header, body = tables.rows(runs)
        run.log({"runs": wandb.Table(columns=header, data=body)})
        run.finish()
    except Exception as err:  # the sweep's results are on disk already; W&B is a view of them
        logging.getLogger(__name__).warning(f"W&B sweep table not logged ({type(err).__name__}: {err})")
