"""`alm-bench report`: the table of runs, the plots, and paired comparisons, written next to the runs."""

from __future__ import annotations

import math
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from alm_bench.errors import UserError
from alm_bench.report import paired, plots, tables
from alm_bench.report.runs import Run, check_same_problem, find_runs

DEFAULT_METRICS = ("objective", "max_violation", "g", "test_accuracy", "sdp_bound", "wall_time_s")


def default_by(runs: list[Run]) -> tuple[str | None, str]:
    """(setting, why): the one override besides seed that takes exactly two values and does not change the
    problem, when the runs have a seed axis; else None and, where it helps, why there is no comparison."""
    if len({r.value("seed") for r in runs}) < 2:
        return None, ""
    axes = {k for r in runs for k in r.overrides if k != "seed" and not k.startswith("hydra")}
    two = [k for k in sorted(axes) if len({r.value(k) for r in runs}) == 2]
    if len(two) != 1:
        return None, ""
    reason = paired.changes_problem(runs, two[0])
    if reason:
        return None, f"no paired comparison: {two[0]}, the one setting besides the seed that varies: {reason}"
    return two[0], ""


def _p(value: float) -> str:
    if math.isnan(value):
        return "undefined"
    return "< 1e-300" if value == 0 else f"{value:.3g}"


def paired_markdown(results: list[paired.PairedResult]) -> str:
    header = ["metric", "pairs", "baseline", "mean", "candidate", "mean", "difference (cand. − base.)",
              "95% CI", "paired t p", "sign-flip p"]
    body = [[r.metric, str(r.n), r.baseline, tables.full(r.mean_baseline), r.candidate,
             tables.full(r.mean_candidate), f"{r.mean_difference:+.6g}",
             "undefined" if math.isnan(r.ci_low) else f"[{r.ci_low:.6g}, {r.ci_high:.6g}]",
             _p(r.t_pvalue), _p(r.permutation_pvalue)] for r in results]
    notes = [f"- {r.metric}: {r.note}" for r in results if r.note]
    return tables.markdown(header, body) + ("\n" + "\n".join(notes) + "\n" if notes else "")


def paired_table(results: list[paired.PairedResult], by: str) -> Table:
    """The paired comparison for the console: the difference and its tests (the means are in paired.md)."""
    first = results[0]
    table = Table(title=f"Paired by seed: {first.candidate} − {first.baseline}", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True,
                  caption="\n".join(f"{r.metric}: {r.note}" for r in results if r.note) or None,
                  caption_justify="left")
    for name in ("metric", "pairs", "difference", "95% CI", "t-test p", "sign-flip p"):
        table.add_column(name, justify="left" if name == "metric" else "right",
                         overflow="fold" if name == "metric" else "ellipsis", no_wrap=name != "metric")
    for r in results:
        ci = "undefined" if math.isnan(r.ci_low) else f"[{r.ci_low:.3g}, {r.ci_high:.3g}]"
        table.add_row(r.metric, str(r.n), f"{r.mean_difference:+.4g}", ci, _p(r.t_pvalue),
                      _p(r.permutation_pvalue))
    return table


def check_some_finished(runs: list[Run], paths: list[Path]) -> None:
    """A report of runs that all failed would be an empty table that exits 0: say what failed instead."""
    failed = [r for r in runs if r.summary.get("status") == "failed"]
    if runs and len(failed) == len(runs):
        first = failed[0]
        raise UserError(f"{', '.join(map(str, paths))}: all {len(runs)} runs failed, nothing to report "
                        f"(run {first.path.name}: {first.summary.get('message', 'no message')})")


def report(paths: list[Path], out: Path | None = None, metrics: list[str] | None = None, by: str | None = None,
           baseline: str | None = None, console: Console | None = None) -> Path:
    console = console or Console()
    runs = find_runs(paths)
    check_same_problem(runs)
    check_some_finished(runs, paths)
    why_not = ""
    if by:
        paired.check_setting(runs, by)
    else:
        by, why_not = default_by(runs)
    out = out or Path(paths[0]) / "report"
    out.mkdir(parents=True, exist_ok=True)

    extra = tuple(metrics or ())
    header, body = tables.rows(runs, extra)
    console.print(tables.rich_table(runs, f"{len(runs)} run{'s' if len(runs) > 1 else ''}", extra,
                                    width=console.width))
    document = [f"# Report on {', '.join(map(str, paths))}\n", tables.markdown(header, body)]
    tables.write_csv(out / "runs.csv", header, body)

    written = plots.write_plots(runs, out / "plots", color_by=by)
    document += ["## Traces\n"] + [f"![{p.stem}](plots/{p.name})" for p in written]

    if by:
        wanted = metrics or [m for m in DEFAULT_METRICS if any(math.isfinite(r.metric(m)) for r in runs)]
        results = [paired.pair_runs(runs, by, m, baseline) for m in wanted]
        table = paired_markdown(results)
        document += [f"\n## Paired comparison by {by}\n", table]
        (out / "paired.md").write_text(table)
        console.print(paired_table(results, by))
    elif why_not:
        document += [f"\n{why_not}\n"]
        console.print(why_not, soft_wrap=True)
    (out / "report.md").write_text("\n".join(document) + "\n")
    console.print(f"report written to {out}/ (report.md, runs.csv, plots/)", soft_wrap=True)
    return out
