"""Paired-seed comparison of two settings: mean difference, 95% t-interval, paired t-test and exact sign-flip
permutation test (pure functions of the paired values), and the pairing of runs, which only ever pairs two runs
that solved the same problem and differ in the compared setting alone.

A test that the data cannot support is reported as undefined, with the reason, never as p = 0: the t-test with
fewer than two pairs or with differences that do not vary (all equal, up to round-off), the interval likewise."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from alm_bench.errors import UserError
from alm_bench.report.runs import Run

EXACT_PERMUTATIONS_UP_TO = 16  # 2^16 sign patterns; beyond that a seeded Monte Carlo sample
ROUND_OFF = 1e-12              # relative: differences (or their spread) below this are float noise

# Config keys that never separate two settings: where the run's files went and how it was watched.
NOT_A_SETTING = ("resume", "job_type", "sweep_metric", "logger")


@dataclass(frozen=True)
class PairedResult:
    metric: str
    baseline: str
    candidate: str
    n: int
    mean_baseline: float
    mean_candidate: float
    mean_difference: float       # candidate - baseline
    ci_low: float                # nan where the interval is undefined (see note)
    ci_high: float
    t_pvalue: float              # nan where the t-test is undefined (see note)
    permutation_pvalue: float
    note: str = ""               # why a test is undefined, or what else the reader must know


def sign_flip_pvalue(differences: np.ndarray, samples: int = 100_000, seed: int = 0) -> float:
    """Two-sided p-value of the mean difference under random sign flips: exact for small n; for larger n a
    Monte Carlo estimate that counts the observed pattern, (hits + 1) / (samples + 1), so it is never 0."""
    d = np.asarray(differences, dtype=float)
    observed = abs(d.mean())
    tolerance = 1e-12 * max(1.0, observed)
    if len(d) <= EXACT_PERMUTATIONS_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
        return float((np.abs((signs * d).mean(axis=1)) >= observed - tolerance).mean())
    signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(samples, len(d)))
    hits = int((np.abs((signs * d).mean(axis=1)) >= observed - tolerance).sum())
    return (hits + 1) / (samples + 1)


def compare(baseline: np.ndarray, candidate: np.ndarray, metric: str = "", names: tuple[str, str] = ("A", "B"),
            confidence: float = 0.95) -> PairedResult:
    from scipy import stats

    a, b = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    d = b - a
    n = len(d)
    if n == 0:
        raise UserError(f"paired comparison of {metric or 'the metric'}: no pairs")
    mean = float(d.mean())
    scale = float(max(np.abs(a).max(), np.abs(b).max()))
    spread = float(d.std(ddof=1)) if n > 1 else math.nan
    ci_low = ci_high = t_p = math.nan
    if np.all(np.abs(d) <= ROUND_OFF * scale):
        note = "no difference: every pair has the same value (up to round-off); the t-test is undefined"
        mean = 0.0
    elif n < 2:
        note = "1 pair: the t-test and its interval need at least 2"
    elif spread <= ROUND_OFF * max(abs(mean), scale):
        note = (f"every pair differs by the same {mean:+.6g}: the t-test and its interval are undefined "
                f"(zero variance); the sign-flip p is the smallest {n} pairs allow")
    else:
        note = ""
        se = spread / math.sqrt(n)
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
        ci_low, ci_high = mean - half, mean + half
        t_p = float(2 * stats.t.sf(abs(mean / se), n - 1))
    return PairedResult(metric, names[0], names[1], n, float(a.mean()), float(b.mean()), mean,
                        ci_low, ci_high, t_p, sign_flip_pvalue(d), note)


def _setting_key(run: Run, by: str) -> tuple:
    """Everything about a run except the compared setting: its composed config (or, for a folder without
    one, its overrides and group choices) without `by` and what lies under it, and the problem it solved."""
    def other(key: str) -> bool:
        return not (key == by or key.startswith(by + ".") or key.startswith("hydra")
                    or key.split(".")[0] in NOT_A_SETTING)

    source = run.config or {**run.choices, **run.overrides}
    return tuple(sorted((k, repr(v)) for k, v in source.items() if other(k))) + (run.problem,)


def changes_problem(runs: list[Run], by: str) -> str | None:
    """Why `by` cannot be the compared setting (say, its values are different problems), else None."""
    if by == "problem":
        return "its options are different problems"
    if by == "seed":
        return "the seed is what pairs the runs"
    problems: dict[str, set[tuple[str, str]]] = {}
    for run in runs:
        problems.setdefault(str(run.value(by)), set()).add(run.problem)
    if len(problems) > 1 and all(len(p) == 1 for p in problems.values()) and len(set.union(*problems.values())) > 1:
        return f"its values are different problems ({', '.join(next(iter(p))[0] for p in problems.values())})"
    return None


def check_setting(runs: list[Run], by: str) -> None:
    reason = changes_problem(runs, by)
    if reason:
        raise UserError(f"--by {by}: {reason}; a paired comparison compares two settings on the same problem")


def levels_of(runs: list[Run], by: str, baseline: str | None) -> tuple[str, str]:
    """(baseline, candidate): the two values of `by`. Values keep sweep order, so the first one swept
    (e.g. controller=unconstrained,ema_alm) is the baseline unless `baseline` names the other."""
    levels = list(dict.fromkeys(r.value(by) for r in runs if r.value(by) is not None))
    if baseline is not None and baseline not in levels:
        raise UserError(f"--baseline {baseline}: not a value of {by} in these runs ({', '.join(levels) or 'none'})")
    first = baseline or (levels[0] if levels else None)
    others = [lv for lv in levels if lv != first]
    if first is None or len(others) != 1:
        raise UserError(f"--by {by}: a paired comparison needs exactly two values, found {len(levels)} "
                        f"({', '.join(levels) or 'none'})" + ("; pick a baseline with --baseline"
                                                             if baseline is None and len(levels) > 2 else ""))
    return first, others[0]


def pair_runs(runs: list[Run], by: str, metric: str, baseline: str | None = None) -> PairedResult:
    """Compare the two values of `by` on `metric` over pairs of runs that solved the same problem and differ in
    `by` alone (the same seed, problem and every other setting). A setting matched by more than one run of
    the same value (the same sweep reported twice) pairs none of them."""
    check_setting(runs, by)
    first, second = levels_of(runs, by, baseline)
    groups: dict[tuple, dict[str, list[Run]]] = {}
    for run in runs:
        groups.setdefault(_setting_key(run, by), {}).setdefault(run.value(by), []).append(run)
    pairs = [(g[first][0], g[second][0]) for g in groups.values()
             if len(g.get(first, ())) == 1 and len(g.get(second, ())) == 1]
    values = [(x, y) for x, y in ((a.metric(metric), b.metric(metric)) for a, b in pairs)
              if math.isfinite(x) and math.isfinite(y)]
    if not values:
        raise UserError(f"--by {by}: no two runs with a finite {metric!r} differ in {by} alone "
                        f"(same problem, seed and every other setting)")
    a, b = map(np.array, zip(*values))
    return compare(a, b, metric, (f"{by}={first}", f"{by}={second}"))
