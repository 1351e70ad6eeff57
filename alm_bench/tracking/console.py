"""A live rich progress bar (only on a terminal) and a summary table at the end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from alm_bench.tracking.base import RunInfo

# Shown live when present in a row, in this order.
LIVE_KEYS = ("objective", "max_violation", "g", "g_ema", "lambda", "lambda_norm", "mu_norm", "rho")
# Conic rows (they carry max_eps) show the dual bound and max(ε_p, ε_d, ε_g), which say how far the solve is:
# their violation is round-off on Max-Cut and ρ is the solver's business.
CONIC_LIVE_KEYS = ("bound", "max_eps")
LIVE_NAMES = {"max_eps": "max ε"}
LIVE_FORMATS = {"bound": ".8g", "max_eps": ".2e"}   # a bound moves in its 6th digit near the end


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value[:8]) + (", …]" if len(value) > 8 else "]")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items() if v not in (None, [], {}))
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
        live = "  ".join(f"{LIVE_NAMES.get(k, k)}={row[k]:{LIVE_FORMATS.get(k, '.4g')}}"
                         for k in (CONIC_LIVE_KEYS if "max_eps" in row else LIVE_KEYS) if k in row)
        self.progress.update(self.task, completed=row.get("step", 0), live=live)

    def finish(self, summary: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.run is not None and self.run.group:
            return  # a sweep job: the sweep's own log gives one line per job and a table at the end
        table = Table(title=f"{self.run.name if self.run else 'run'}: {summary.get('status', '?')}",
                      show_header=False, title_justify="left")
        table.add_column(style="bold", overflow="fold")
        table.add_column(overflow="fold")
        for key, value in summary.items():
            if value not in (None, "", {}, []):
                table.add_row(key, _fmt(value))
        self.console.print(table)
        if self.run is not None:
            # whole, on a line of its own, so it can be copied at any terminal width
            self.console.print(f"run folder: {self.run.output_dir}", soft_wrap=True, markup=False, highlight=False)
