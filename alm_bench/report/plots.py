"""One PNG per trace metric, one line per run, labelled by the run's overrides (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from alm_bench.report.runs import Run, varying_keys  # noqa: E402

# Traced quantities worth a picture, when present; the ones spanning decades get a log axis.
PLOT_METRICS = ("objective", "loss", "accuracy", "val_accuracy", "max_violation", "g", "g_ema", "logK",
                "lambda", "lambda_norm", "mu_norm", "rho", "sdp_bound", "eps_p", "eps_d", "eps_g")
LOG_SCALE = {"max_violation", "rho", "eps_p", "eps_d", "eps_g", "mu_norm", "lambda_norm"}


def metrics_in(runs: list[Run]) -> list[str]:
    present = {k for r in runs for row in r.trace for k in row}
    return [m for m in PLOT_METRICS if m in present]


def figure(runs: list[Run], metric: str, color_by: str | None = None):
    """Lines labelled by the overrides that vary; with `color_by`, one colour (and legend entry) per value."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    keys = varying_keys(runs)
    groups = sorted({str(r.value(color_by)) for r in runs}) if color_by else []
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    seen: set[str] = set()
    for run in runs:
        points = [(row["step"], row[metric]) for row in run.trace if metric in row and "step" in row]
        if not points:
            continue
        if color_by:
            group = str(run.value(color_by))
            label = f"{color_by}={group}" if group not in seen else "_nolegend_"
            seen.add(group)
            ax.plot(*zip(*points), label=label, color=colours[groups.index(group) % len(colours)],
                    linewidth=1.2, alpha=0.8)
        else:
            ax.plot(*zip(*points), label=run.label_for(keys), linewidth=1.4)
    values = [row[metric] for r in runs for row in r.trace if metric in row]
    if metric in LOG_SCALE and values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against step")
    ax.grid(alpha=0.3)
    if color_by or len(runs) <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_plots(runs: list[Run], folder: Path, color_by: str | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for metric in metrics_in(runs):
        fig = figure(runs, metric, color_by)
        path = folder / f"{metric}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
