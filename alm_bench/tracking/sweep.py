"""Hydra callback for sweeps: one line per finished job, and a table of every job when the sweep ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape


def _console() -> Console:
    # Made per call: the callback is pickled to launcher workers, and a Console holds a lock.
    return Console(stderr=True)


class SweepSummary(Callback):

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        job = config.hydra.job
        if job_return.status == JobStatus.COMPLETED:
            value = job_return.return_value
            result = f"done, {config.get('sweep_metric', 'objective')}={value:.8g}" if isinstance(value, float) \
                else "done"
        else:
            error = job_return._return_value
            result = f"[bold red]FAILED[/]: {escape(f'{type(error).__name__}: {error}')}"
        _console().print(f"{escape(f'[job {job.num}]')} {escape(job.override_dirname or '(no overrides)')}: {result}", soft_wrap=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from alm_bench.errors import UserError
        from alm_bench.report import tables
        from alm_bench.report.runs import find_runs

        console = _console()
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            runs = find_runs([sweep_dir])
        except UserError as err:
            console.print(f"sweep {sweep_dir}: {err}")
            return
        jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir() and (p / ".hydra").exists()), key=lambda p: p.name)
        missing = [p.name for p in jobs if not (p / "summary.json").exists()]
        console.print(f"sweep {sweep_dir}: {len(runs)} of {len(jobs)} jobs finished", soft_wrap=True)
        console.print(tables.rich_table(runs, ""))
        if missing:
            console.print(f"[bold red]jobs without a summary (failed before running):[/] {', '.join(missing)}")
        console.print(f"compare them: alm-bench report {sweep_dir}", soft_wrap=True)
