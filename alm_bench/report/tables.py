"""The table of runs: on the console (rich), and as Markdown and CSV files."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from rich.table import Table

from alm_bench.report.runs import Run, varying_keys

# Final metrics shown when at least one run has them, in this order.
COLUMNS = ("status", "objective", "max_violation", "g", "g_ema", "test_accuracy", "val_accuracy", "sdp_bound",
           "cut_value", "eps_p", "eps_d", "eps_g", "iterations", "wall_time_s")


def columns_for(runs: list[Run]) -> list[str]:
    return [c for c in COLUMNS if any(c in r.summary for r in runs)]


def cell(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else str(value)


def rows(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    cols = columns_for(runs)
    header = ["run", "overrides", *cols]
    keys = varying_keys(runs)
    body = [[str(r.path.name), r.label_for(keys), *(cell(r.summary.get(c)) for c in cols)] for r in runs]
    return header, body


def rich_table(runs: list[Run], title: str) -> Table:
    header, body = rows(runs)
    table = Table(title=title, title_justify="left")
    for name in header:
        table.add_column(name, justify="right" if name not in ("run", "overrides", "status") else "left")
    for line in body:
        table.add_row(*line)
    return table


def markdown(header: list[str], body: list[list[str]]) -> str:
    escape = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(escape, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(escape, line)) + " |" for line in body]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, header: list[str], body: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(body)
