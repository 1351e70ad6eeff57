"""Classic ALM on an SDP through the Burer-Monteiro factorisation X = V V^T (as in SDPLR).

The inner problem  min_V <C, V V^T> + lam.h + rho/2 |h|^2,  h = A(V V^T) - b,  is smooth and unconstrained;
it is solved by the controller's torch optimizer (L-BFGS by default) to the controller's inner tolerance,
with the gradient 2 (C + A^*(lam + rho h)) V written out (no autograd graph over the sparse products).
After each inner solve the classic controller's own dual step (`ClassicALM.step`, with no inequalities)
updates lam and rho. The dual point is y = -lam (our Lagrangian is <C,X> + y.(b - A X)), and
its certificate comes from the smallest eigenvalue of C - A^*(y), like every other solver's.
"""

from __future__ import annotations

import math
import time
from typing import Iterator

import torch
from torch import Tensor

from alm_bench.conic.eigen import CHECK_TOL, BlockLOBPCG
from alm_bench.conic.iterate import ConicIterate
from alm_bench.conic.problems import ConicSDP, factor_rank
from alm_bench.controllers.classic_alm import ClassicALM
from alm_bench.runners import RunContext, past_time_limit


def initial_factor(problem: ConicSDP, r: int, seed: int) -> Tensor:
    """Random V scaled to tr(V V^T) = gamma; for Max-Cut, unit rows (a feasible start)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(problem.n, r, generator=g, dtype=torch.float64)
    if problem.has_diagonal_constraints():
        v = v / v.norm(dim=1, keepdim=True) * torch.as_tensor(problem.b_np).clamp(min=0).sqrt()[:, None]
    else:
        v = v * math.sqrt(problem.gamma) / v.norm()
    return v.to(problem.device)


def initial_penalty(problem: ConicSDP) -> float:
    """|C|_F / sqrt(n): the dual scale per constraint. ALM is the proximal point method on the dual with step
    rho, so rho is measured in those units; the ALGENCAN rule (for NLPs) gives ~1e5 on G1 and a stiff
    inner problem."""
    return max(problem.c_norm, 1e-12) / math.sqrt(problem.n)


def inner_copies(ctl: ClassicALM) -> int:
    """How many n x r arrays the inner solve keeps: L-BFGS two per stored pair, and ~8 in the loop and the
    optimizer's step (at n = 10^5, rank 449 and 10 pairs the first inner solve held 11 GB: ~30 copies)."""
    if ctl.inner_optimizer.get("name") == "LBFGS":
        # torch's two-loop recursion costs ~36 us per stored pair; with its default of 100 pairs it cost
        # 4x the function evaluations on G14. 10 pairs is L-BFGS's usual choice (set history_size to change).
        ctl.inner_optimizer.setdefault("history_size", 10)
        return 2 * int(ctl.inner_optimizer["history_size"]) + 8
    return 8


def iterate(problem: ConicSDP, ctl: ClassicALM, ctx: RunContext, start: dict | None = None) -> Iterator[ConicIterate]:
    problem.to(ctx.device)
    b = problem.b
    oracle = BlockLOBPCG(problem.n, ctx.device, seed=ctx.seed)
    copies = inner_copies(ctl)
    if start is not None:  # a checkpoint: the factor, the multipliers and penalty, the oracle's block
        v = start["v"].to(ctx.device).clone()
        ctl.load_state_dict(start["controller"])
        s = ctl.state
        s.lam, s.mu = s.lam.to(ctx.device), s.mu.to(ctx.device)
        oracle.load_state_dict(start["oracle"])
    else:
        v = initial_factor(problem, factor_rank(problem.m, problem.n, copies), ctx.seed).clone()
        ctl.start(None, torch.zeros(problem.m, dtype=torch.float64, device=ctx.device),
                  torch.zeros(0, dtype=torch.float64, device=ctx.device), default_rho=initial_penalty(problem))
        s = ctl.state
    no_inequalities = s.mu
    scale = problem.slack(torch.zeros_like(s.lam)).gershgorin()

    def evaluate(x: Tensor) -> tuple[Tensor, Tensor]:
        cv = problem.c_mm(x)
        h = problem.constraint_values(x) - b
        return cv, h

    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        v.requires_grad_(True)
        optimizer = ctl.make_inner_optimizer([v])
        evaluations = 0

        def closure() -> Tensor:
            nonlocal evaluations
            evaluations += 1
            with torch.no_grad():
                cv, h = evaluate(v)
                multiplier = s.lam + s.rho * h
                loss = (cv * v).sum() + s.lam @ h + 0.5 * s.rho * (h @ h)
                v.grad = 2 * (cv + problem.adjoint_mm(multiplier, v))
            return loss

        while evaluations < ctl.max_inner_steps:
            before = evaluations
            optimizer.step(closure)
            if float(v.grad.abs().max()) <= s.inner_tol or evaluations == before:
                break
            if past_time_limit(ctl, time.perf_counter() - started) is not None:
                break   # the runner stops after this iteration (at 10^5 vertices one inner solve took > 15 min)
        v.requires_grad_(False)
        inner_time = time.perf_counter() - t0
        with torch.no_grad():
            cv, h = evaluate(v)
            objective = float((cv * v).sum())
            rho_used, inner_tol_used = s.rho, s.inner_tol
            ctl.step(h, no_inequalities)
            progress = s.previous_progress
            y = -s.lam
            t1 = time.perf_counter()
            found = oracle(problem.slack(y), 1, 16, CHECK_TOL * scale)
        factor = v.clone()   # the next inner solve changes v in place
        yield ConicIterate(objective=objective, residual=h, y=y.clone(), lambda_min=float(found.values[0]),
                           factor=factor, state={"v": factor.cpu(), "controller": ctl.state_dict(),
                                                 "oracle": oracle.state_dict()},
                           row={"rho": rho_used, "inner_tol": inner_tol_used, "inner_evaluations": evaluations,
                                "progress": progress, "rank": v.shape[1], "eig_iters": found.iterations,
                                "eig_fallbacks": oracle.fallbacks, "inner_s": inner_time,
                                "oracle_s": time.perf_counter() - t1})
