"""Seed 000's loop on a smooth problem: Adam on x with the AugLagLR loss, the scheduler stepping every step.

The scheduler sees one non-negative penalty: the sum of the violations (|h| and [g]_+), as in the seed's
test, where it is max(3 - x, 0). Adam's parameter group is named "x" and starts at lr_init_dict["x"]
(0.1 when absent), as in the seed.

The scheduler decides when to stop; the run's status is measured: `converged` only when the final point is
feasible to penalty_tolerance and stationary to controller.stationarity_tol (best-fitting multipliers);
`max_iterations` when a step budget ran out; else `stopped`, with the scheduler's reasons.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from alm_bench.problems.base import (SmoothProblem, best_multiplier_stationarity, evaluate, max_violation,
                                    relative_error)
from alm_bench.runners import RunContext
from alm_bench.runners.stopping import STOPS, Diverged, stop_for
from alm_bench.tracking.base import Trackers

MAX_STEPS = 100_000  # the scheduler's own outer/inner limits normally stop it long before
LOG_EVERY = 10


def run(problem: SmoothProblem, controller, trackers: Trackers, ctx: RunContext) -> dict[str, Any]:
    x = problem.initial_point().to(device=ctx.device, dtype=problem.dtype).clone().requires_grad_(True)
    lr = controller.config.lr_init_dict.get("x", 0.1)
    optimizer = torch.optim.Adam([{"params": [x], "name": "x", "lr": lr}])
    status, message, step, start = "max_iterations", f"stopped at the loop's limit of {MAX_STEPS} steps", 0, \
        time.perf_counter()
    x_good, row, stopped = x.detach().clone(), {}, False
    try:
        for step in range(1, MAX_STEPS + 1):
            optimizer.zero_grad()
            e = evaluate(problem, x)
            penalty = e.eq.abs().sum() + e.ineq.clamp(min=0).sum()
            loss = controller.augmented_loss(e.objective, penalty)
            if not torch.isfinite(loss):
                raise Diverged(f"the augmented loss became NaN/Inf at step {step}")
            loss.backward()
            optimizer.step()
            converged = controller.update(float(penalty.detach()), float(e.objective.detach()), optimizer,
                                          epoch_end=False)
            x_good = x.detach().clone()
            row = {"step": step, "objective": float(e.objective.detach()), "penalty": float(penalty.detach()),
                   "max_violation": max_violation(e.eq.detach(), e.ineq.detach()), **controller.metrics(),
                   "lr": optimizer.param_groups[0]["lr"], "wall_time_s": time.perf_counter() - start}
            if step % LOG_EVERY == 0 or converged:
                trackers.log(row)
            if converged:
                stopped = True
                break
    except STOPS as err:
        stop = stop_for(err, ctx.output_dir)
        status, message = stop.status, stop.message
    with torch.no_grad():
        e = evaluate(problem, x_good)
    violation, stationarity = max_violation(e.eq, e.ineq), float("nan")
    if status == "max_iterations":   # not diverged or interrupted: judge the point the loop ended at
        stationarity = best_multiplier_stationarity(problem, x_good, controller.config.penalty_tolerance)
        status, message = _judge(controller, stopped, violation, stationarity, step, message)
    summary = {"status": status, "message": message, "objective": float(e.objective),
               "max_violation": violation, "stationarity": stationarity, "iterations": step,
               "wall_time_s": time.perf_counter() - start, **controller.metrics(), **problem.summary_fields(x_good)}
    ref = summary.get("reference_objective")
    if ref is not None:
        summary["relative_error"] = relative_error(summary["objective"], ref)
    return summary


def _judge(controller, stopped: bool, violation: float, stationarity: float, step: int,
           message: str) -> tuple[str, str]:
    """converged when the final point meets the run's tolerances, whoever stopped it; otherwise
    max_iterations (a budget ran out) or stopped (the scheduler's own rule), saying why."""
    feasibility_tol, stationarity_tol = controller.config.penalty_tolerance, controller.stationarity_tol
    measured = (f"max violation {violation:.3g} (tolerance {feasibility_tol:g}), stationarity {stationarity:.3g} "
                f"(tolerance {stationarity_tol:g})")
    if stopped:
        message = f"AugLagLR stopped at step {step} ({controller.stop_reasons()})"
    if violation <= feasibility_tol and stationarity <= stationarity_tol:
        return "converged", f"{message}; {measured}"
    if not stopped or controller.last_reasons[-1:] == ("MAX_OUTER_STEPS_REACHED",):
        return "max_iterations", f"{message}, short of the run's tolerances: {measured}"
    return "stopped", f"{message}, short of the run's tolerances: {measured}"
