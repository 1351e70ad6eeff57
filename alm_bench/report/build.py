"""`alm-bench report`: the table of runs, the plots, and paired comparisons, written next to the runs."""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console

from alm_bench.report import paired, plots, tables
from alm_bench.report.runs import Run, check_same_problem, find_runs

DEFAULT_METRICS = ("objective", "max_violation", "g", "test_accuracy", "sdp_bound", "wall_time_s")


def default_by(runs: list[Run]) -> str | None:
    """The one override besides seed that takes exactly two values, when the runs have a seed axis."""
    if len({r.value("seed") for r in runs}) < 2:
        return None
    axes = {k for r in runs for k in r.overrides if k != "seed" and not k.startswith("hydra")}
    two = [k for k in sorted(axes) if len({r.value(k) for r in runs}) == 2]
    return two[0] if len(two) == 1 else None


def paired_markdown(results: list[paired.PairedResult]) -> str:
    header = ["metric", "pairs", "baseline", "mean", "candidate", "mean", "difference (cand. − base.)",
              "95% CI", "paired t p", "sign-flip p"]
    body = [[r.metric, str(r.n), r.baseline, f"{r.mean_baseline:.6g}", r.candidate, f"{r.mean_candidate:.6g}",
             f"{r.mean_difference:+.6g}", f"[{r.ci_low:.6g}, {r.ci_high:.6g}]", f"{r.t_pvalue:.3g}",
             f"{r.permutation_pvalue:.3g}"] for r in results]
    return tables.markdown(header, body)


def report(paths: list[Path], out: Path | None = None, metrics: list[str] | None = None, by: str | None = None,
           baseline: str | None = None, console: Console | None = None) -> Path:
    console = console or Console()
    runs = find_runs(paths)
    check_same_problem(runs)
    out = out or Path(paths[0]) / "report"
    out.mkdir(parents=True, exist_ok=True)

    header, body = tables.rows(runs)
    console.print(tables.rich_table(runs, f"{len(runs)} run{'s' if len(runs) > 1 else ''}"))
    document = [f"# Report on {', '.join(map(str, paths))}\n", tables.markdown(header, body)]
    tables.write_csv(out / "runs.csv", header, body)

    by = by or default_by(runs)
    written = plots.write_plots(runs, out / "plots", color_by=by if len(runs) > 12 else None)
    document += ["## Traces\n"] + [f"![{p.stem}](plots/{p.name})" for p in written]

    if by:
        wanted = metrics or [m for m in DEFAULT_METRICS if any(math.isfinite(r.metric(m)) for r in runs)]
        results = [paired.pair_runs(runs, by, m, baseline) for m in wanted]
        table = paired_markdown(results)
        document += [f"\n## Paired comparison by {by}\n", table]
        (out / "paired.md").write_text(table)
        console.print(f"\nPaired comparison by {by}:\n{table}")
    (out / "report.md").write_text("\n".join(document) + "\n")
    console.print(f"report written to {out}/ (report.md, runs.csv, plots/)")
    return out
