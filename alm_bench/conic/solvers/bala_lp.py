"""BALA's LP variant: the inner set is the segment Omega_k = conv(v_k, w_k), so the subproblem
min_{x in Omega_k} L_rho(x, y) is a 1-D quadratic in the step alpha along d = v - w:
    alpha = clip((rho <r, A d> + <A^T y - c, d>) / (rho |A d|^2), 0, 1),  r = b - A w.
"""

from __future__ import annotations

from typing import Iterator

from alm_bench.conic.iterate import ConicIterate
from alm_bench.conic.lp import BoxLP
from alm_bench.conic.solvers.bala import BALA, descent_test
from alm_bench.runners import RunContext


def segment_step(rho: float, r, ad, aty_minus_c_d: float) -> float:
    """The minimiser in [0, 1] of L_rho(w + alpha d, y) (see the module docstring)."""
    curvature = rho * float(ad @ ad)
    slope = rho * float(r @ ad) + aty_minus_c_d
    if curvature <= 0:
        return 1.0 if slope > 0 else 0.0
    return min(max(slope / curvature, 0.0), 1.0)


def iterate(problem: BoxLP, ctl: BALA, ctx: RunContext, start: dict | None = None) -> Iterator[ConicIterate]:
    problem.to(ctx.device)
    if start is not None:  # a checkpoint: center, candidate, oracle point, controller
        ctl.load_state_dict(start["controller"])
        y, v, w = (start[k].to(ctx.device) for k in ("y", "v", "w"))
        g_y = start["g_y"]
    else:
        ctl.start(problem.c_norm, problem.n)
        y = problem.b.new_zeros(problem.m)
        g_y, v = problem.dual_function(y)
        w = v.clone()
    while True:
        rho = ctl.state.rho
        d = v - w
        ad = problem.a @ d
        r = problem.b - problem.a @ w
        alpha = segment_step(rho, r, ad, float((problem.a.T @ y - problem.c) @ d))
        w = w + alpha * d
        residual = problem.b - problem.a @ w
        z = y + rho * residual
        g_model_z = -(float(problem.c @ w) + float(z @ residual))
        g_z, v = problem.dual_function(z)
        descent = descent_test(g_z, g_y, g_model_z, ctl.beta)
        if descent:
            y, g_y = z, g_z
        ctl.record_step(descent)
        yield ConicIterate(objective=float(problem.c @ w), residual=-residual, y=y.clone(), lambda_min=0.0,
                           dual_value=-g_y, factor=None,
                           row={"step_type": "descent" if descent else "null", "rho": rho, "alpha": alpha,
                                **{f"x{i + 1}": float(x) for i, x in enumerate(w[:10])}},
                           state={"controller": ctl.state_dict(), "y": y.cpu(), "v": v.cpu(), "w": w.cpu(),
                                  "g_y": g_y})
