"""The loop for smooth problems: inner minimisation of L_rho by a torch optimizer, then one dual step.

Reads top to bottom: evaluate at x0, start the controller, then per outer iteration
minimise -> evaluate -> dual step -> measure KKT residuals -> log a row -> stop if converged.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from alm_bench import checkpoint
from alm_bench.controllers.classic_alm import ClassicALM
from alm_bench.errors import UserError
from alm_bench.problems.base import (Evaluation, SmoothProblem, constraint_names, evaluate, max_violation,
                                    relative_error)
from alm_bench.runners import RunContext, inner, past_time_limit
from alm_bench.runners.stopping import STOPS, Diverged, stop_for
from alm_bench.tracking.base import Trackers
from alm_bench.tracking.files import TRACE_FILE

PER_CONSTRAINT_COLUMNS = 20  # per-constraint trace columns only for problems this small


def check_finite(e: Evaluation, where: str) -> None:
    for label, value in (("objective", e.objective), ("equality constraints", e.eq),
                         ("inequality constraints", e.ineq)):
        if not torch.isfinite(value).all():
            raise Diverged(f"{label} became NaN/Inf {where}")


def minimize_inner(problem: SmoothProblem, controller: ClassicALM, x: Tensor) -> int:
    """Minimise L_rho(., lam, mu) from x to the controller's inner tolerance; returns evaluations."""
    def loss_fn(z: Tensor) -> Tensor:
        e = evaluate(problem, z)
        return controller.lagrangian(e.objective, e.eq, e.ineq)

    try:
        return inner.minimize(loss_fn, x, controller.make_inner_optimizer([x]), controller.state.inner_tol,
                              controller.max_inner_steps, newton=controller.newton_polish)
    except Diverged as err:
        raise Diverged(f"{err} (outer step {controller.state.outer_step + 1})") from None


def kkt_residuals(e: Evaluation, lam: Tensor, mu: Tensor, x: Tensor) -> tuple[float, float]:
    """Stationarity |grad f + J_h^T lam + J_g^T mu|_inf and complementarity |min(-g, mu)|_inf."""
    lagrangian = e.objective
    if e.eq.numel():
        lagrangian = lagrangian + lam.to(x) @ e.eq
    if e.ineq.numel():
        lagrangian = lagrangian + mu.to(x) @ e.ineq
    (grad,) = torch.autograd.grad(lagrangian, x)
    complementarity = float(torch.minimum(-e.ineq.detach(), mu.to(x)).abs().max()) if e.ineq.numel() else 0.0
    return float(grad.abs().max()), complementarity


def run(problem: SmoothProblem, controller: ClassicALM, trackers: Trackers, ctx: RunContext) -> dict[str, Any]:
    x = problem.initial_point().to(device=ctx.device, dtype=problem.dtype).clone().requires_grad_(True)
    with torch.no_grad():
        e0 = evaluate(problem, x)
    try:
        check_finite(e0, "at the initial point")
    except Diverged as err:   # nothing to iterate from: a diverged run without a trace, not a traceback
        stop = stop_for(err, ctx.output_dir)
        return {"status": stop.status, "message": stop.message, "objective": float(e0.objective),
                "max_violation": max_violation(e0.eq, e0.ineq), "iterations": 0, "wall_time_s": 0.0}
    eq_names, ineq_names = constraint_names(problem, x.detach())
    per_constraint = len(eq_names) + len(ineq_names) <= PER_CONSTRAINT_COLUMNS
    last = {"objective": float(e0.objective), "max_violation": max_violation(e0.eq, e0.ineq)}
    first_step, inner_total, elapsed = 1, 0, 0.0
    if ctx.resume is not None:  # continue after the last whole outer iteration of that run
        saved = checkpoint.load_loop(ctx.resume, "smooth")
        if saved["x"].shape != x.shape:
            raise UserError(f"resume: {ctx.resume} has x of shape {tuple(saved['x'].shape)}, this problem "
                            f"{tuple(x.shape)}")
        with torch.no_grad():
            x.copy_(saved["x"].to(x))
        controller.load_state_dict(saved["controller"])
        first_step, inner_total = saved["step"] + 1, saved["inner_total"]
        elapsed, last = saved["wall_time_s"], saved["last"]
        trackers.continue_trace(ctx.resume / TRACE_FILE, saved["step"])
    else:
        controller.start(e0.objective, e0.eq, e0.ineq)

    status, message = "max_iterations", ""
    x_good = x.detach().clone()
    controller.warm_up()   # one-time import costs before the clock starts
    start = time.perf_counter() - elapsed
    try:
        for step in range(first_step, controller.max_outer_iterations + 1):
            inner_steps = minimize_inner(problem, controller, x)
            inner_total += inner_steps
            e = evaluate(problem, x)
            check_finite(e, f"at outer step {step}")
            objective = float(e.objective.detach())
            controller.step(e.eq, e.ineq)
            lam, mu = controller.state.lam, controller.state.mu
            stationarity, complementarity = kkt_residuals(e, lam, mu, x)
            row = {"step": step, "objective": objective, "max_violation": max_violation(e.eq.detach(), e.ineq.detach()),
                   "stationarity": stationarity, "complementarity": complementarity,
                   **controller.metrics(), "inner_steps": inner_steps,
                   "wall_time_s": time.perf_counter() - start}
            if per_constraint:
                row.update({f"h:{n}": float(v) for n, v in zip(eq_names, e.eq.detach())})
                row.update({f"g:{n}": float(v) for n, v in zip(ineq_names, e.ineq.detach())})
                row.update({f"lambda:{n}": float(v) for n, v in zip(eq_names, lam)})
                row.update({f"mu:{n}": float(v) for n, v in zip(ineq_names, mu)})
            trackers.log(row)
            x_good, last = x.detach().clone(), row
            # Every outer iteration (a few KB, atomic): a run killed by any signal resumes from here.
            checkpoint.save_loop(ctx.output_dir, "smooth", {
                "x": x_good, "controller": controller.state_dict(), "step": step, "inner_total": inner_total,
                "wall_time_s": row["wall_time_s"], "last": row})
            if controller.converged(stationarity, row["max_violation"], complementarity):
                status = "converged"
                break
            if (stop := past_time_limit(controller, row["wall_time_s"])) is not None:
                message = stop  # the status stays max_iterations: a budget ran out
                break
    except STOPS as err:
        stop = stop_for(err, ctx.output_dir)
        status, message = stop.status, stop.message

    summary: dict[str, Any] = {
        "status": status, "message": message,
        "objective": last["objective"], "max_violation": last["max_violation"],
        "stationarity": last.get("stationarity"), "complementarity": last.get("complementarity"),
        "iterations": int(last.get("step", 0)), "inner_steps": inner_total,
        "wall_time_s": time.perf_counter() - start, "rho": controller.state.rho,
    }
    if per_constraint:
        summary["multipliers"] = {"eq": controller.state.lam.tolist(), "ineq": controller.state.mu.tolist()}
    summary.update(problem.summary_fields(x_good))
    ref = summary.get("reference_objective")
    if ref is not None:
        summary["relative_error"] = relative_error(summary["objective"], ref)
    return summary
