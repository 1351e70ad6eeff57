"""The table of runs: on the console (rich), fitted to the terminal, and as Markdown and CSV files, which keep
every value at full precision (the shortest text that reads back as the same float)."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from rich import box
from rich.table import Table

from alm_bench.report.runs import Run, varying_keys

# Final metrics shown when at least one run has them, in this order.
COLUMNS = ("status", "objective", "max_violation", "g", "g_ema", "test_accuracy", "val_accuracy", "sdp_bound",
           "cut_value", "eps_p", "eps_d", "eps_g", "iterations", "wall_time_s")
EPS = ("eps_p", "eps_d", "eps_g")

# Console headers: short, so that a table of runs fits 80 columns.
SHORT = {"max_violation": "violation", "test_accuracy": "test acc", "val_accuracy": "val acc",
         "sdp_bound": "bound", "cut_value": "cut", "iterations": "iters", "wall_time_s": "time s",
         "max_eps": "max ε", "inner_steps": "inner steps"}


def columns_for(runs: list[Run], extra: tuple[str, ...] = ()) -> list[str]:
    wanted = [*COLUMNS, *(m for m in extra if m not in COLUMNS)]
    return [c for c in wanted if any(c in r.summary for r in runs)]


def full(value) -> str:
    """A value as files keep it: floats in full (repr), nothing rounded."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return "" if value is None else str(value)


def rows(runs: list[Run], extra: tuple[str, ...] = ()) -> tuple[list[str], list[list[str]]]:
    """Header and rows at full precision (runs.csv, report.md, W&B): the run, its overrides, one column per
    override that varies, the final metrics, and the run's folder."""
    cols = columns_for(runs, extra)
    keys = varying_keys(runs)
    header = ["run", "overrides", *keys, *cols, "folder"]
    body = [[r.path.name, r.label_for(keys), *(r.overrides.get(k, "") for k in keys),
             *(full(r.summary.get(c)) for c in cols), str(r.path.resolve())] for r in runs]
    return header, body


# ---- the console -------------------------------------------------------------------------------------

def distinct_format(values: list[float], least: int = 4, most: int = 12) -> str:
    """The format with the fewest significant digits (at least `least`) that prints values differing by more
    than round-off differently, so that two solvers' bounds 3191.5939 and 3191.6022 do not both read 3191.6."""
    finite = sorted({v for v in values if math.isfinite(v)})
    for digits in range(least, most + 1):
        shown = {}
        clash = False
        for v in finite:
            text = f"{v:.{digits}g}"
            if text in shown and abs(v - shown[text]) > 1e-12 * max(abs(v), 1e-300):
                clash = True
                break
            shown[text] = v
        if not clash:
            return f".{digits}g"
    return f".{most}g"


def _short_key(key: str, keys: list[str]) -> str:
    """An override's console header: the key itself when short, else its shortest unambiguous dotted tail."""
    if len(key) <= 14:
        return key
    parts = key.split(".")
    for n in range(1, len(parts) + 1):
        tail = ".".join(parts[-n:])
        if sum(k == tail or k.endswith("." + tail) for k in keys) == 1:
            return tail
    return key


def _short_value(value: str) -> str:
    """A path-valued override (problem.path='/data/gset/G1.mat') shows its file name; the CSV keeps it whole."""
    text = value.strip("'\"")
    return text.rsplit("/", 1)[-1] if "/" in text else value


def run_names(runs: list[Run]) -> list[str]:
    """Each run's folder name, or, where two share one (job 0 of two sweeps), its path below their common
    folder."""
    names = [r.path.name for r in runs]
    if len(set(names)) == len(names):
        return names
    root = Path(os.path.commonpath([str(r.path.resolve()) for r in runs]))
    return [str(r.path.resolve().relative_to(root)) for r in runs]


def _axis_cells(values: list[str]) -> list[str]:
    """An override column for the console: file names for paths, and floats a sweeper chose
    (controller.rho=8.003182717737431) to the digits that tell them apart."""
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return [_short_value(v) for v in values]
    if all(v.lstrip("+-").isdigit() for v in values):
        return values
    fmt = distinct_format(numbers)
    return [format(x, fmt) for x in numbers]


def console_columns(runs: list[Run], extra: tuple[str, ...] = ()) -> list[str]:
    """The metrics the console shows: the ε columns of conic runs folded into their maximum, and no column
    that is zero up to round-off in every run (a Max-Cut violation of 1e-16; runs.csv keeps it)."""
    cols = columns_for(runs, extra)
    if any(c in cols for c in EPS):
        first = min(cols.index(c) for c in EPS if c in cols)
        cols = [c for c in cols if c not in EPS]
        cols.insert(first, "max_eps")

    def round_off(c: str) -> bool:
        values = [_metric(r, c) for r in runs]
        return c not in extra and all(isinstance(v, (int, float)) and abs(v) <= 1e-12 for v in values)

    return [c for c in cols if c == "status" or not round_off(c)]


def _metric(run: Run, column: str):
    if column == "max_eps":
        eps = [run.metric(c) for c in EPS if c in run.summary]
        return max(eps) if eps and all(math.isfinite(e) for e in eps) else math.nan
    return run.summary.get(column)


# Which metrics a narrow console keeps longest (the rest are dropped first, last listed first).
KEEP = ("status", "objective", "sdp_bound", "test_accuracy", "max_violation", "max_eps", "wall_time_s",
        "iterations", "cut_value", "val_accuracy", "g")
GAP = 2  # characters between two columns (SIMPLE_HEAD box, collapsed padding)


def rich_table(runs: list[Run], title: str, extra: tuple[str, ...] = (), mark: Run | None = None,
               width: int = 80) -> Table:
    """The runs as a console table that fits `width` columns: one column per override that varies (path values
    by file name), short headers, ε columns folded into max ε, per column just enough digits to tell the runs
    apart; where that is still too wide, the least important metrics are left out (and named in the caption).
    `mark` (a sweeper's best run) is starred. Every value in full: runs.csv."""
    keys = varying_keys(runs)
    cols = console_columns(runs, extra)
    values = {c: [_metric(r, c) for r in runs] for c in cols}
    formats = {c: distinct_format([v for v in vs if isinstance(v, float)]) for c, vs in values.items()}

    def text(c: str, v) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else format(v, formats[c])
        return "" if v is None else str(v)

    cells = {c: [text(c, v) for v in values[c]] for c in cols}
    names = [name + (" *" if r is mark else "") for r, name in zip(runs, run_names(runs))]
    axes = {k: _axis_cells([r.overrides.get(k, "") for r in runs]) for k in keys}
    # Text columns fold beyond 24 characters; numbers never break.
    fixed = max(map(len, ["run", *names])) + sum(
        min(24, max(len(_short_key(k, keys)), *map(len, axes[k]))) for k in keys)
    widths = {c: max(len(SHORT.get(c, c)), *map(len, cells[c])) for c in cols}
    priority = sorted(cols, key=lambda c: (-1 if c in extra else KEEP.index(c) if c in KEEP else len(KEEP)))
    left_out = []
    while priority and fixed + sum(widths[c] for c in cols) + GAP * (len(keys) + len(cols)) + 2 > width:
        dropped = priority.pop()
        if dropped == "status":
            break
        cols.remove(dropped)
        left_out.append(SHORT.get(dropped, dropped))

    caption = f"left out at {width} columns: {', '.join(left_out)} (all in runs.csv)" if left_out else None
    table = Table(title=title or None, title_justify="left", caption=caption, caption_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("run", overflow="fold", min_width=min(12, max(map(len, ["run", *names]))))
    for k in keys:
        table.add_column(_short_key(k, keys), overflow="fold",
                         min_width=min(24, max(len(_short_key(k, keys)), *map(len, axes[k]))))
    for c in cols:
        numeric = c != "status"
        table.add_column(SHORT.get(c, c), justify="right" if numeric else "left", no_wrap=True,
                         min_width=widths[c])
    for k in range(len(runs)):
        table.add_row(names[k], *(axes[key][k] for key in keys), *(cells[c][k] for c in cols))
    return table


# ---- files ---------------------------------------------------------------------------------------------

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
