"""A live rich progress bar (only on a terminal) and a summary table at the end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from alm_bench.tracking.base import RunInfo

# Shown live when present in a row, in this order.
LIVE_KEYS = ("objective", "max_violation", "g", "g_ema", "lambda", "lambda_norm", "mu_norm", "rho")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value[:8]) + (", …]" if len(value) > 8 else "]")
    return str(value)


class ConsoleTracker:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task = None
        self.run: RunInfo | None = None

    def start(self, run: RunInfo) -> None:
        self.run = run
        if not self.console.is_terminal:
            return
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[live]}"),
                                 console=self.console, transient=False)
        self.task = self.progress.add_task(run.name, total=run.total_steps, live="")
        self.progress.start()

    def set_total_steps(self, total: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, total=total)

    def log(self, row: dict[str, float]) -> None:
        if self.progress is None:
            return
        live = "  ".join(f"{k}={row[k]:.4g}" for k in LIVE_KEYS if k in row)
        self.progress.update(self.task, completed=row.get("step", 0), live=live)

    def finish(self, summary: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.run is not None and self.run.group:
            return  # a sweep job: the sweep's own log gives one line per job and a table at the end
        table = Table(title=f"{self.run.name if self.run else 'run'}: {summary.get('status', '?')}",
                      show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for key, value in summary.items():
            if value not in (None, "", {}, []):
                table.add_row(key, _fmt(value))
        if self.run is not None:
            table.add_row("run folder", str(self.run.output_dir))
        self.console.print(table)
