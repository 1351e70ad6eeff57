"""One PNG per traced quantity: against step on the left and against wall time on the right (a BALA step, a
mixing sweep and an ALM outer iteration are not the same unit of work), one line per run in the same colour in
every figure (matplotlib, Agg).

A quantity that does not move in any run (ε_d = 0 and a 1e-16 violation on Max-Cut) gets no figure; one that
spans decades gets a log axis, or a symmetric-log axis when it reaches 0 or changes sign, so the 1e-9 tail stays
visible; runs that never had a value (an unconstrained baseline's multipliers) are left out of that figure."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from alm_bench.report.runs import Run, varying_keys

# Traced quantities worth a picture when present, in this order, with what the axis says.
LABELS = {
    "objective": "objective",
    "loss": "train-batch loss",
    "val_loss": "validation loss (held-out split)",
    "accuracy": "train-batch accuracy",
    "val_accuracy": "validation accuracy (held-out split)",
    "max_violation": "max constraint violation",
    "stationarity": "stationarity",
    "complementarity": "complementarity",
    "g": "constraint g (≤ 0 feasible)",
    "g_ema": "constraint g, moving average",
    "logK": "log K",
    "lambda": "multiplier λ",
    "lambda_norm": "‖λ‖ (equality multipliers)",
    "mu_norm": "‖μ‖ (inequality multipliers)",
    "rho": "penalty ρ",
    "max_eps": "max ε = max(ε_p, ε_d, ε_g)",
    "bound_gap": "bound gap |best bound − bound|",
    "eps_g": "relative gap ε_g (objective vs bound)",
    "eps_p": "primal infeasibility ε_p",
    "eps_d": "dual infeasibility ε_d",
}
NOTES = {"bound_gap": " (best: the known optimum, else the best final bound of the runs on the problem)"}
# Nonnegative quantities that shrink by decades: log axis (symmetric log where they reach 0).
MAGNITUDES = {"max_violation", "stationarity", "complementarity", "max_eps", "eps_p", "eps_d", "eps_g", "rho",
              "lambda_norm", "mu_norm", "bound_gap"}
# Signed quantities that approach 0: symmetric log axis when they span decades.
SIGNED = {"g", "g_ema", "lambda"}
MULTIPLIERS = {"lambda", "lambda_norm", "mu_norm"}
MAX_PROBLEM_ROWS = 6   # runs on more problems than this share one row of panels
ROUND_OFF = 1e-12


def series(run: Run, metric: str, x: str = "step") -> list[tuple[float, float]]:
    """(x, value) for every row where both are finite (rows where a metric was not measured hold NaN)."""
    return [(row[x], row[metric]) for row in run.trace
            if math.isfinite(row.get(x, math.nan)) and math.isfinite(row.get(metric, math.nan))]


def moves(values: list[float]) -> bool:
    """False for a series that is constant or round-off throughout (nothing to see in a plot)."""
    if not values:
        return False
    scale = max(abs(v) for v in values)
    return scale > 1e-14 and max(values) - min(values) > ROUND_OFF * scale


def same(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    return len(a) == len(b) and all(x == u and abs(y - v) <= ROUND_OFF * max(abs(y), abs(v)) for (x, y), (u, v)
                                    in zip(a, b))


def metrics_in(runs: list[Run]) -> list[str]:
    """The quantities that move in at least one run, less any that repeat one already chosen in every run
    (on Max-Cut ε_g is max ε: ε_p and ε_d are round-off)."""
    chosen: list[str] = []
    for metric in LABELS:
        if not any(moves([v for _, v in series(r, metric)]) for r in runs):
            continue
        if any(all(same(series(r, metric), series(r, m)) for r in runs) for m in chosen):
            continue
        chosen.append(metric)
    return chosen


def with_bound_gap(runs: list[Run]) -> list[Run]:
    """Runs whose traces have a dual bound gain `bound_gap`: its distance to the problem's known optimum, or
    else to the best final bound among the runs on the same problem (the bound is a lower bound on the
    minimised objective), which a log axis shows converging where the bound itself is flat after a few steps."""
    out = {id(r): r for r in runs}
    for same_problem in by_problem(runs).values():
        finals = [series(r, "bound")[-1][1] for r in same_problem if series(r, "bound")]
        if not finals:
            continue
        references = {r.summary.get("reference_objective") for r in same_problem} - {None}
        reference = float(references.pop()) if len(references) == 1 else max(finals)
        for r in same_problem:
            out[id(r)] = replace(r, trace=[{**row, "bound_gap": abs(reference - row["bound"])} if "bound" in row
                                           else row for row in r.trace])
    return [out[id(r)] for r in runs]


def by_problem(runs: list[Run]) -> dict[str, list[Run]]:
    """The runs grouped by the problem they solved, in the order they come."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.problem[0], []).append(run)
    return groups


def has(run: Run, metric: str) -> bool:
    """Whether `run` traced `metric`; a multiplier that is 0 throughout means the problem has none of its kind
    (an inequality-only problem's ‖λ‖)."""
    values = [v for _, v in series(run, metric)]
    return bool(values) and not (metric in MULTIPLIERS and not any(values))


def step_label(runs: list[Run]) -> str:
    rows = [row for r in runs for row in r.trace[:1]]
    if any("epoch" in row for row in rows):
        return "training step"
    if any("max_eps" in row for row in rows):
        return "solver step (its own unit: BALA step, ALM outer iteration, mixing log row)"
    return "outer iteration"


@dataclass(frozen=True)
class Style:
    colour: str
    label: str       # legend entry; "_nolegend_" for the second run of a colour group


def styles(runs: list[Run], color_by: str | None = None) -> dict[Path, Style]:
    """One colour per run, or per value of `color_by` (the compared setting), fixed once for every figure."""
    keys = varying_keys(runs)
    if color_by:
        groups = list(dict.fromkeys(str(r.value(color_by)) for r in runs))
        colour = {g: c for g, c in zip(groups, palette(len(groups)))}
        seen: set[str] = set()
        out = {}
        for run in runs:
            group = str(run.value(color_by))
            out[run.path] = Style(colour[group], f"{color_by}={group}" if group not in seen else "_nolegend_")
            seen.add(group)
        return out
    return {run.path: Style(c, run.label_for(keys)) for run, c in zip(runs, palette(len(runs)))}


def palette(n: int) -> list[str]:
    import matplotlib
    from matplotlib.colors import to_hex

    if n <= 10:
        return [to_hex(matplotlib.colormaps["tab10"](k)) for k in range(n)]
    if n <= 20:
        return [to_hex(matplotlib.colormaps["tab20"](k)) for k in range(n)]
    return [to_hex(matplotlib.colormaps["viridis"](k / (n - 1))) for k in range(n)]


def set_scale(ax, metric: str, values: list[float]) -> None:
    """Log for a positive quantity spanning more than a decade, symmetric log (linear within the smallest
    nonzero magnitude) where such a quantity reaches 0 or changes sign; linear otherwise."""
    nonzero = [abs(v) for v in values if v != 0]
    if metric not in MAGNITUDES | SIGNED or not nonzero:
        return
    big, small = max(nonzero), max(min(nonzero), max(nonzero) * 1e-15)
    if metric in MAGNITUDES and min(values) > 0:
        if big / small > 10:
            ax.set_yscale("log")
    elif metric in MAGNITUDES or big / small > 1e3:
        ax.set_yscale("symlog", linthresh=10 ** math.floor(math.log10(small)))


def figure(runs: list[Run], metric: str, color_by: str | None = None, style: dict[Path, Style] | None = None):
    """Left: against step; right: against wall time (when the trace has it). Runs on different problems (a
    sweep over graphs or HS problems) get a row each. Runs without a value of `metric` are left out."""
    plt = pyplot()
    style = style or styles(runs, color_by)
    shown = [r for r in runs if has(r, metric)]
    timed = any(series(r, metric, "wall_time_s") for r in shown)
    problems = by_problem(shown)
    rows = list(problems.items()) if 1 < len(problems) <= MAX_PROBLEM_ROWS else [("", shown)]
    fig, axes = plt.subplots(len(rows), 2 if timed else 1, figsize=(11 if timed else 7, 0.6 + 3.6 * len(rows)),
                             dpi=110, sharey="row", squeeze=False)
    for row_axes, (problem, row_runs) in zip(axes, rows):
        panels = [(row_axes[0], "step", step_label(row_runs))]
        if timed:
            panels.append((row_axes[1], "wall_time_s", "wall time (s)"))
        for ax, x, xlabel in panels:
            for run in row_runs:
                points = series(run, metric, x)
                if points:
                    s = style[run.path]
                    ax.plot(*zip(*points), color=s.colour, label=s.label, linewidth=1.3, alpha=0.85,
                            marker="." if len(points) < 30 else None, markersize=3)
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
            if metric in SIGNED - {"lambda"}:
                ax.axhline(0.0, color="black", linewidth=0.8)  # the feasibility boundary
        set_scale(row_axes[0], metric, [v for r in row_runs for _, v in series(r, metric)])
        row_axes[0].set_ylabel(LABELS.get(metric, metric) if not problem else f"{problem}\n{LABELS.get(metric, metric)}")
        handles, _ = row_axes[0].get_legend_handles_labels()
        if handles and len(handles) <= 20:
            row_axes[-1].legend(fontsize=7, loc="best")
    title = LABELS.get(metric, metric) + NOTES.get(metric, "")
    fig.suptitle(f"{title}: {len(shown)} of {len(runs)} runs" if len(shown) < len(runs) else title, fontsize=10)
    fig.tight_layout()
    return fig


def pyplot():
    """matplotlib, imported when a report draws (not when a run starts), drawing to files only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(runs: list[Run], folder: Path, color_by: str | None = None) -> list[Path]:
    plt = pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    runs = with_bound_gap(runs)
    style = styles(runs, color_by)
    written = []
    for metric in metrics_in(runs):
        fig = figure(runs, metric, color_by, style)
        path = folder / f"{metric}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
