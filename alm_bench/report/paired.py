"""Paired-seed comparison of two settings: mean difference, 95% t-interval, paired t-test and exact
sign-flip permutation test (pure functions of the paired values)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from alm_bench.errors import UserError
from alm_bench.report.runs import Run

EXACT_PERMUTATIONS_UP_TO = 16  # 2^16 sign patterns; beyond that a seeded Monte Carlo sample


@dataclass(frozen=True)
class PairedResult:
    metric: str
    baseline: str
    candidate: str
    n: int
    mean_baseline: float
    mean_candidate: float
    mean_difference: float       # candidate - baseline
    ci_low: float
    ci_high: float
    t_pvalue: float
    permutation_pvalue: float


def sign_flip_pvalue(differences: np.ndarray, samples: int = 100_000, seed: int = 0) -> float:
    """Two-sided p-value of the mean difference under random sign flips (exact for small n)."""
    d = np.asarray(differences, dtype=float)
    observed = abs(d.mean())
    if len(d) <= EXACT_PERMUTATIONS_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(samples, len(d)))
    means = np.abs((signs * d).mean(axis=1))
    return float((means >= observed - 1e-12 * max(1.0, observed)).mean())


def compare(baseline: np.ndarray, candidate: np.ndarray, metric: str = "", names: tuple[str, str] = ("A", "B"),
            confidence: float = 0.95) -> PairedResult:
    a, b = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    d = b - a
    n = len(d)
    if n < 2:
        raise UserError(f"paired comparison of {metric or 'the metric'} needs at least 2 pairs, got {n}")
    mean = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    t_p = float(stats.ttest_rel(b, a).pvalue) if se > 0 else (1.0 if mean == 0 else 0.0)
    return PairedResult(metric, names[0], names[1], n, float(a.mean()), float(b.mean()), mean,
                        mean - half, mean + half, t_p, sign_flip_pvalue(d))


def pair_runs(runs: list[Run], by: str, metric: str, baseline: str | None = None) -> PairedResult:
    """Pair runs that differ only in `by` (matched on every other override, the seed included).
    The baseline is `baseline`, else the value of `by` in the first run."""
    # Values in sweep order: the first one swept (e.g. controller=unconstrained,ema_alm) is the baseline.
    levels = list(dict.fromkeys(r.value(by) for r in runs if r.value(by) is not None))
    if len(levels) != 2 and baseline is None:
        raise UserError(f"--by {by}: a paired comparison needs exactly two values, found {len(levels)} "
                        f"({', '.join(levels) or 'none'}); pick a baseline with --baseline")
    if baseline is not None and baseline not in levels:
        raise UserError(f"--baseline {baseline}: not a value of {by} in these runs ({', '.join(levels)})")
    first = baseline or levels[0]
    others = [lv for lv in levels if lv != first]
    if len(others) != 1:
        raise UserError(f"--by {by}: compare the baseline {first} with one other value, found {', '.join(others)}")
    second = others[0]

    def key(run: Run) -> tuple:
        return tuple(sorted((k, v) for k, v in run.overrides.items() if k != by and not k.startswith("hydra")))

    groups: dict[tuple, dict[str, Run]] = {}
    for run in runs:
        groups.setdefault(key(run), {})[run.value(by)] = run
    pairs = [(g[first], g[second]) for g in groups.values() if first in g and second in g]
    values = [(a.metric(metric), b.metric(metric)) for a, b in pairs]
    values = [(x, y) for x, y in values if math.isfinite(x) and math.isfinite(y)]
    if not values:
        raise UserError(f"no pairs of runs with a finite {metric!r} differ only in {by}")
    a, b = map(np.array, zip(*values))
    return compare(a, b, metric, (f"{by}={first}", f"{by}={second}"))
