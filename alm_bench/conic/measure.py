"""The loop for conic problems (SDPs, Max-Cut, box LPs): one runner measures every solver the same way.

A solver is an iterator of `ConicIterate`s (BALA, classic ALM on the Burer-Monteiro factor, the mixing
method, SCS); this runner computes the slides' metrics from each (our code for every solver, so the
comparison is fair), logs one trace row per iteration, stops at max(eps_p, eps_d, eps_g) <= problem.tol
once a reliable lambda_min at that y confirms the bound behind the claim, recertifies the best dual bound with a
reliable eigenvalue at the end, rounds the factor to a cut (Max-Cut) and writes the partition.
Where rescaling the factor's rows gives an exactly feasible X (diag(X) = b), the metrics are those of the
better of that X and the solver's own (column `primal`; `iterate_max_eps` keeps the solver's own).

    eps_p = |A(X) - b| / (1 + |b|)
    eps_d = |C - A^*(y) - Z| / (1 + |C|)        (0 when y is shifted to exact feasibility)
    eps_g = |<C, X> - <b, y>| / (1 + |<C, X>| + |<b, y>|)
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch

from alm_bench import checkpoint
from alm_bench.conic.certificate import DualCertifier
from alm_bench.conic.eigen import (CHOLESKY_LIMIT, DENSE_LIMIT, certified_lambda_min, confirmed_lambda_min,
                                   lambda_min_at_least)
from alm_bench.conic.iterate import ConicIterate
from alm_bench.conic.lp import BoxLP
from alm_bench.conic.problems import ConicSDP, MaxCut, lowest_dual_within, relative_gap
from alm_bench.conic.sparse_psd import factor_pays
from alm_bench.conic.solvers import solver_loop
from alm_bench.errors import UserError
from alm_bench.problems.base import relative_error
from alm_bench.runners import RunContext, past_time_limit
from alm_bench.runners.stopping import STOPS, Diverged, stop_for
from alm_bench.tracking.base import Trackers
from alm_bench.tracking.files import TRACE_FILE

CUT_FILE = "cut.txt"
CHECKPOINT_EVERY_S = 30.0   # besides the checkpoint at the end (and at Ctrl-C/SIGTERM)
# BLAS threads for CPU runs. The loops do many small dense products: two threads gave no speed-up, and
# when another process keeps the cores busy, OpenBLAS's spinning threads made LAPACK calls 100x slower.
BLAS_THREADS = int(os.environ.get("ALM_BENCH_BLAS_THREADS", "1"))


@contextmanager
def cpu_threads(device: torch.device):
    if device.type != "cpu" or BLAS_THREADS <= 0:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(BLAS_THREADS)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it numpy/scipy keep their default thread count
        threadpool_limits = None
    try:
        if threadpool_limits is None:
            yield
        else:
            with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
                yield
    finally:
        torch.set_num_threads(previous)


def solver_iterations(problem: ConicSDP, controller: Any, ctx: RunContext,
                      start: dict | None = None) -> Iterator[ConicIterate]:
    """The controller's loop on this problem (continuing from a checkpointed loop state `start`)."""
    loop = solver_loop(problem, controller)
    return loop(problem, controller, ctx) if start is None else loop(problem, controller, ctx, start)


def dual_objective(problem: ConicSDP, y: torch.Tensor, lambda_min: float,
                   certifier: DualCertifier | None = None) -> tuple[list[tuple[float, float]], float]:
    """([(a dual value for eps_g, its eps_d), ...], a certified lower bound on the optimum) at y.
    With a trace certificate e (sum_k e_k A_k >= I, conic/trace.py), y + min(0, lambda_min) e is exactly dual
    feasible: eps_d = 0 and the dual value is the bound <b, y> + T min(0, lambda_min). Where tr X is not fixed
    (T may be loose) y itself is also offered, with eps_d the norm of the negative part of C - A^*(y)
    (computed up to DENSE_LIMIT); the metrics take the better of the two."""
    by = float(problem.b @ y)
    shifted = problem.dual_bound(y, lambda_min)
    bound = shifted if certifier is None else max(shifted, certifier.bound(y, lambda_min))
    if problem.trace is not None:
        options = [(shifted, 0.0)]
        if problem.trace.exact or problem.n > DENSE_LIMIT:
            return options, bound
    else:
        options = []
    if problem.n > DENSE_LIMIT:
        return [(by, float("nan"))], bound
    values = np.linalg.eigvalsh(problem.slack(y).scipy().toarray())
    negative = float(np.sqrt((np.minimum(values, 0.0) ** 2).sum()))
    return options + [(by, negative / (1 + problem.c_norm))], bound


def certified_bound_at(problem: ConicSDP, y: torch.Tensor, certifier: DualCertifier | None) -> float:
    """The bound at y with a reliable lambda_min: the trace certificate's, or the dual certifier's if better."""
    lam = certified_lambda_min(problem.slack(y))
    bound = problem.dual_bound(y, lam)
    return bound if certifier is None else max(bound, certifier.bound(y, lam))


def primal_candidates(problem: ConicSDP, it: ConicIterate) -> list[tuple[str, float, torch.Tensor]]:
    """(name, <C, X>, A(X) - b) of the primal points this iteration offers: the solver's own X and, where a
    rescaling of the factor's rows makes V V^T exactly feasible (diag(X) = b), that point too. Near the
    optimum the rescaled X's objective is ~ L(X, y), a first-order correction that the raw X's eps_p lacks:
    BALA on G1 reached 5e-4 at iteration 8 with it, at 38 without (the mixing method's X is feasible anyway)."""
    candidates = [("iterate", it.objective, it.residual)]
    if it.factor is None:   # the LP loop and any solver without a factor
        return candidates
    if float(it.residual.abs().max()) <= 1e-12 * (1 + float(problem.b.abs().max())):
        return candidates   # feasible to round-off already
    v = problem.feasible_factor(it.factor.to(problem.device))
    if v is not None:
        objective = float((v * problem.c_mm(v)).sum())
        candidates.append(("rescaled factor", objective, problem.constraint_values(v) - problem.b))
    return candidates


def evaluate(problem: ConicSDP, it: ConicIterate, lambda_min: float, candidates: list, b_norm: float,
             certifier: DualCertifier | None = None) -> dict[str, Any]:
    """The slides' metrics at the dual point (y, lambda_min) for the best of the primal candidates."""
    if it.dual_value is not None:
        duals, bound = [(it.dual_value, 0.0)], it.dual_value
    else:
        duals, bound = dual_objective(problem, it.y, lambda_min, certifier)
    scored = []
    for name, objective, residual in candidates:
        eps_p = float(residual.norm()) / (1 + b_norm)
        for dual, eps_d in duals:
            eps_g = relative_gap(objective, dual)
            scored.append((max(eps_p, eps_d, eps_g), name, objective, residual, eps_p, eps_d, eps_g))
    best = min(scored, key=lambda c: c[0])
    max_eps, name, objective, residual, eps_p, eps_d, eps_g = best
    return {"objective": objective, "bound": bound, "eps_p": eps_p, "eps_d": eps_d, "eps_g": eps_g,
            "max_eps": max_eps, "max_violation": float(residual.abs().max()), "primal": name,
            "iterate_max_eps": min(c[0] for c in scored if c[1] == scored[0][1])}


CLAIM_TEST_SHARES = (1e-3, 0.5, 1.0)   # confirm_claim's tests: how far from the claimed lambda to the threshold
# Above CHOLESKY_LIMIT the confirmation is ARPACK's Ritz value less its residual: a residual this share of the
# way from the claimed lambda to the threshold decides the claim (to round-off it took twice as long on G60).
CLAIM_MARGIN_SHARE = 0.1


def claim_threshold(problem: ConicSDP, it: ConicIterate, candidates: list, b_norm: float) -> float:
    """The smallest lambda_min at which the claim still holds: the bound <b, y> + T min(0, lambda_min) (T the
    exact trace, problem.trace) may fall to the lowest dual value within the tolerance of a primal candidate
    that is feasible within it."""
    by = float(problem.b @ it.y)
    lows = [lowest_dual_within(objective, problem.tol) for _, objective, residual in candidates
            if float(residual.norm()) / (1 + b_norm) <= problem.tol]
    return min((low - by) / problem.trace.bound for low in lows) if lows else 0.0


def claim_tests(claimed: float, threshold: float, error: float | None) -> list[float]:
    """The levels t at which confirm_claim asks "lambda_min >= t?", highest first. Without an error estimate:
    CLAIM_TEST_SHARES of the way to the threshold. With one: twice the error below the claimed value (no
    nearer than the first share, no lower than the threshold), then the threshold. The fixed shares' first
    test failed on every dense G-set graph for BALA and the mixing method (a wasted Cholesky: 0.2 s of BALA's
    0.94 s on G22 to 1e-6, two of them 0.17 s of the mixing method's 0.75 s)."""
    if error is None:
        return [claimed + share * (threshold - claimed) for share in CLAIM_TEST_SHARES]
    first = min(claimed + CLAIM_TEST_SHARES[0] * (threshold - claimed), max(threshold, claimed - 2 * error))
    return [first] if first <= threshold else [first, threshold]


def confirm_claim(problem: ConicSDP, it: ConicIterate, lam: float, candidates: list, b_norm: float) -> float:
    """A reliable lower bound on lambda_min at it.y, for a claim that rests on the solver's lam (a Ritz value,
    which can only be optimistic). Where the claim is all that needs deciding (tr X fixed by the constraints, so
    the shifted dual is exactly feasible and eps_d = 0) and a Cholesky is affordable (dense up to
    CHOLESKY_LIMIT, sparse at any order where the slack's graph has little fill), it answers
    "lambda_min >= t?" at t a thousandth, half and all of the way from the claimed value to the claim's
    threshold (the first keeps the row's bound as tight as the solver's own where that is accurate: an
    interior-point peer's, BALA's at the end), or first where the solver's own error estimate puts it
    (claim_tests); the exact lambda_min only when they fail (the claim does not hold), or for other problems
    and orders (above CHOLESKY_LIMIT to a residual that the claim's margin sets)."""
    slack = problem.slack(it.y)
    residual_tol = None
    if problem.trace is not None and problem.trace.exact:
        threshold = claim_threshold(problem, it, candidates, b_norm)
        claimed = min(lam, 0.0)
        sparse = factor_pays(slack.scipy())   # a sparse LDL^T decides at any order where it pays
        if problem.n <= CHOLESKY_LIMIT or sparse:
            for t in claim_tests(claimed, threshold, it.lambda_error):
                if t <= claimed and (certified := lambda_min_at_least(slack, t, sparse)) is not None:
                    return min(lam, certified)
        elif threshold < claimed:   # ARPACK: lambda_min only as accurate as the claim's margin needs
            residual_tol = CLAIM_MARGIN_SHARE * (claimed - threshold)
    return min(lam, confirmed_lambda_min(slack, residual_tol))


def solver_ended(controller: Any, last: dict[str, Any], tol: float) -> str:
    """Why a solver that stopped by itself did not converge by our metrics, in its own words and ours."""
    own = next((f" ({key.removesuffix('_status')}: {value})" for key, value in last.items()
                if key.endswith("_status")), "")
    where = f"max eps {last['max_eps']:.2g}" if "max_eps" in last else "no iterate"
    return f"{type(controller).__name__} ended{own} at {where}, short of problem.tol={tol:g}"


def run(problem: ConicSDP, controller: Any, trackers: Trackers, ctx: RunContext) -> dict[str, Any]:
    with cpu_threads(ctx.device):
        return _run(problem, controller, trackers, ctx)


def _run(problem: ConicSDP, controller: Any, trackers: Trackers, ctx: RunContext) -> dict[str, Any]:
    b_norm = float(np.linalg.norm(problem.b_np))
    status, message = "max_iterations", ""
    last: dict[str, Any] = {}
    best_bound, best_y, factor = -math.inf, None, None
    confirmed_bound = -math.inf   # the best bound that a confirmation certified
    last_y = None
    # Without a trace certificate a bound needs an exactly feasible dual point (conic/certificate.py); with
    # one that does not fix tr X, T may be loose (control1: 400 where tr X* = 18.8), and such a point is
    # often the better bound.
    trace = getattr(problem, "trace", False)
    certifier = DualCertifier(problem) if trace is None or (trace and not trace.exact) else None
    step, elapsed, loop_state = 0, 0.0, None
    fingerprint = problem.fingerprint() if hasattr(problem, "fingerprint") else None
    if ctx.resume is not None:  # continue after the last whole iteration of that run
        saved = checkpoint.load_loop(ctx.resume, "conic")
        if saved["controller"] != type(controller).__name__:
            raise UserError(f"resume: {ctx.resume} was solved by {saved['controller']}, this run uses "
                            f"{type(controller).__name__}")
        if saved.get("problem") not in (None, fingerprint):
            raise UserError(f"resume: {problem.source} no longer holds the problem that {ctx.resume} solved "
                            f"(its data changed since); start a new run without resume=")
        step, elapsed, last, loop_state = saved["step"], saved["wall_time_s"], saved["last"], saved["loop"]
        best_bound, best_y, factor = saved["best_bound"], saved["best_y"], saved["factor"]
        confirmed_bound = saved.get("confirmed_bound", -math.inf)
        best_y = best_y.to(ctx.device) if best_y is not None else None
        trackers.continue_trace(ctx.resume / TRACE_FILE, step)
    iterations = solver_iterations(problem, controller, ctx, loop_state)
    if hasattr(controller, "warm_up"):   # one-time costs (imports, compilation) before the clock starts
        controller.warm_up()
    max_iterations = getattr(controller, "max_iterations", None) or getattr(controller, "max_outer_iterations", 0)
    start = time.perf_counter() - elapsed
    saved_at = time.perf_counter()

    def save_checkpoint() -> None:
        if loop_state is not None:
            checkpoint.save_loop(ctx.output_dir, "conic", {
                "controller": type(controller).__name__, "problem": fingerprint, "loop": loop_state,
                "step": last["step"],
                "wall_time_s": last["wall_time_s"], "last": last, "best_bound": best_bound,
                "confirmed_bound": confirmed_bound,
                "best_y": None if best_y is None else best_y.cpu(),
                "factor": None if factor is None else factor.cpu()})

    confirmed_at: tuple[torch.Tensor, float] | None = None   # (y, the confirmed lambda_min there)
    try:
        for it in iterations:
            step += 1
            values = [it.objective, float(it.residual.abs().max()), float(it.y.abs().max()), it.lambda_min]
            if not all(math.isfinite(v) for v in values):
                raise Diverged(f"a NaN or Inf appeared at iteration {step}")
            candidates = primal_candidates(problem, it)
            lam, confirmed = it.lambda_min, False
            if confirmed_at is not None and torch.equal(confirmed_at[0], it.y):  # BALA's null steps keep y
                lam, confirmed = min(lam, confirmed_at[1]), True
            metrics = evaluate(problem, it, lam, candidates, b_norm, certifier)
            if metrics["max_eps"] <= problem.tol and it.dual_value is None and not confirmed:
                # The solver's eigenvalue is a Ritz value (an overestimate of lambda_min: an optimistic
                # bound), converged only as far as the solver needed: a claim is confirmed by a reliable
                # lambda_min first, the same way for every solver, and the run goes on if it does not hold.
                lam, confirmed = confirm_claim(problem, it, lam, candidates, b_norm), True
                confirmed_at = (it.y.clone(), lam)
                if certifier is not None:   # an exactly feasible point near this y, and maybe an interior one
                    confirmed_bound = max(confirmed_bound, certifier.certify(it.y))
                metrics = evaluate(problem, it, lam, candidates, b_norm, certifier)
                confirmed_bound = max(confirmed_bound, metrics["bound"])
            if metrics["bound"] > best_bound:
                best_bound, best_y = metrics["bound"], it.y.clone()
            factor = it.factor if it.factor is not None else factor
            last_y = it.y
            row = {"step": step, **metrics, "lambda_confirmed": confirmed, **it.row,
                   "wall_time_s": time.perf_counter() - start}
            trackers.log(row)
            last, loop_state = row, it.state
            if time.perf_counter() - saved_at >= CHECKPOINT_EVERY_S:  # a SIGKILL loses at most this much
                save_checkpoint()
                saved_at = time.perf_counter()
            if row["max_eps"] <= problem.tol:
                status = "converged"
                break
            if max_iterations and step >= max_iterations:
                break
            if (stop := past_time_limit(controller, row["wall_time_s"])) is not None:
                message = stop
                break
        else:   # the solver ended on its own test (SCS, Clarabel, CSDP at their tolerances), short of ours
            status, message = "stopped", solver_ended(controller, last, problem.tol)
    except STOPS as err:
        stopped = err
    else:
        stopped = None
    solve_time = time.perf_counter() - start
    save_checkpoint()  # also after convergence: resume= with a smaller problem.tol goes on from here
    if stopped is not None:   # after the checkpoint, so that an interrupted run's message says how to go on
        stop = stop_for(stopped, ctx.output_dir)
        status, message = stop.status, stop.message
    finished = status not in ("interrupted", "failed")  # only then certify the bound and round the cut

    summary: dict[str, Any] = {"status": status, "message": message, "objective": last.get("objective"),
                               "max_violation": last.get("max_violation"), "iterations": step,
                               "wall_time_s": solve_time, **{k: last.get(k) for k in ("eps_p", "eps_d", "eps_g", "primal")}}
    for key in ("descent_steps", "null_steps"):
        if hasattr(getattr(controller, "state", None), key):
            summary[key] = getattr(controller.state, key)
    if isinstance(problem, BoxLP):
        summary["dual_bound"] = best_bound  # the LP's dual function is exact: no recertification needed
        if problem.reference_objective is not None and last:
            summary["relative_error"] = relative_error(last["objective"], problem.reference_objective)
    elif (best_y is not None or last_y is not None) and finished:
        t0 = time.perf_counter()
        # best_y has the best bound by the solver's own eigenvalues, which can be optimistic: a bound that a
        # confirmation certified during the run may be the better one.
        # The last point too: best_y is best by the solver's own (Ritz) eigenvalues, which early on can be far too
        # optimistic (mcp500-1 at its time limit, never confirmed, reported a bound 2.3% off while its last
        # point's certified bound was within 1e-4).
        points = [y for y in (best_y, last_y) if y is not None]
        if len(points) == 2 and torch.equal(*points):
            points = points[:1]
        certified = max([confirmed_bound, *(certified_bound_at(problem, y, certifier) for y in points)])
        if certifier is not None and last_y is not None:   # an exactly feasible point near the last dual point
            certified = max(certified, certifier.certify(last_y))
        summary.update(sdp_bound=problem.report_value(certified) if math.isfinite(certified) else None,
                       certify_time_s=time.perf_counter() - t0,
                       sdp_value=problem.report_value(last["objective"]) if last else None)
        if last and math.isfinite(certified):
            summary["relative_gap"] = relative_gap(last["objective"], certified)
    if isinstance(problem, MaxCut) and factor is not None and finished:
        summary.update(_round(problem, factor, ctx))
    summary.update(problem.summary_fields())
    return summary


def _round(problem: MaxCut, factor: torch.Tensor, ctx: RunContext) -> dict[str, Any]:
    from alm_bench.conic.rounding import goemans_williamson, write_partition

    t0 = time.perf_counter()
    signs, cut = goemans_williamson(problem.adjacency, factor.detach().cpu().numpy(), trials=problem.rounding_trials,
                                    seed=ctx.seed, local_search=problem.local_search)
    out = {"cut_value": cut, "rounding_time_s": time.perf_counter() - t0}
    if ctx.output_dir is not None:  # a library call without a run folder (benchmarks, notebooks) writes nothing
        path = ctx.output_dir / CUT_FILE
        write_partition(path, signs)
        out["cut_file"] = str(path)
    return out
