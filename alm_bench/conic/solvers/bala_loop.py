"""The BALA loop on an SDP with the spectral bundle (the method: bala.py; its subproblem: bala_subproblem.py).

The bundle is P (n x r, orthonormal) plus an aggregate W (tr W = 1) of which only A(W) and <C, W> are kept:
W itself is never formed. Per iteration: the small subproblem in (eta, S) -> w, z -> the eigen-oracle at z
-> descent or null step -> model update (keep the top r_p directions of S, fold the rest into W, add the
oracle's r_c new eigenvectors), which keeps both w and v = gamma u u^T in the next inner set.
"""

from __future__ import annotations

import math
import time
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from alm_bench.conic.eigen import BlockLOBPCG, block_dense_eigenpairs, dense_eigenpairs, lowest_eigenvector
from alm_bench.conic.iterate import ConicIterate
from alm_bench.conic.kernels import numpy_path
from alm_bench.conic.problems import ConicSDP, psd_block_ranges, relative_gap
from alm_bench.conic.solvers.bala import BALA, descent_test, far_null, new_vectors
from alm_bench.conic.solvers.bala_blocks import column_blocks, extend_basis_blocks, ranked_block_eigh, row_blocks
from alm_bench.conic.solvers.bala_warm import primal_phase, start_state, warm_start_applies
from alm_bench.conic.solvers.bala_subproblem import (INTERIOR_SIZE_LIMIT, INTERIOR_SIZE_LIMIT_PERSISTENT, Subproblem,
                                                     diagonal_constraint_matrix, smat, solve_subproblem,
                                                     solve_subproblem_np, svec, svec_indices)
from alm_bench.errors import UserError
from alm_bench.runners import RunContext

# Up to this order (all of the PSD blocks, the LP coordinates included) the oracle is a dense eigh: arch0
# (n = 335) spent 0.1-0.2 s an iteration in 60-270 LOBPCG iterations whose Ritz vectors, at residual 1e-4,
# could not separate S*'s two null directions from its next six eigenvalues (4e-5 .. 9e-5).
DENSE_ORACLE_ORDER = 500
EXTRA_BLOCK = 4          # LOBPCG block = r_p + r_c + 4: the spare columns speed up the wanted ones
RANK_RELATIVE = 1e-9     # eigenvalues of S above this times the largest count towards rank(S)
# ... after the interior-point method, whose S keeps every eigenvalue positive (of the order of its barrier
# weight, up to 1e-5 of the largest on theta1): counted there, the bundle grew to its cap (45 columns where
# rank X* = 7) and each subproblem cost 0.3 s. The directions not kept are folded into the aggregate, not lost.
RANK_RELATIVE_INTERIOR = 1e-3
ORACLE_TOL_CAP = 1e-3   # the oracle tolerance, relative to the Gershgorin scale, while the predicted decrease is large
# Only lambda_1 enters g(z) (the descent test, the bound); the other r_c eigenvectors only feed the bundle, where
# a somewhat larger residual is still a good direction. Converging them all to lambda_1's tolerance cost LOBPCG
# iterations for nothing: to 5e-4, 3 seeds, G1 0.74 -> 0.63 s, G22 2.50 -> 2.14 s, G43 0.89 -> 0.78 s with 10x.
# 3x is as fast on the dense graphs (G14 1.40 vs 1.53 s, G22 3.16 vs 3.38, G43 0.85 vs 0.92 in one A/B) and
# less loose where the bundle must keep learning: G55 reached max eps 7.4e-3 in 120 s with 3x, 1.2e-2 with 10x
# (one run each), where many 10x calls returned the previous vectors after 0 iterations.
TRAILING_TOL_FACTOR = 3.0
# Above this order (G55, G60) the bottom of the spectrum is a near-continuum and the warm block alone often
# converged to the second cluster: Ritz values missed lambda_min by up to 1e-2, the bound was optimistic and
# the run stalled (G60 not at 5e-4 in 300 s). There ARPACK's lowest eigenvector (0.1 s) leads the block. On
# the dense graphs (n <= 3000) the warm block finds it, and ARPACK would double an iteration (G1: 20-60 ms
# against 26 ms).
KRYLOV_LEAD_ORDER = 4000
# gamma is raised (doubled, up to the certified trace bound) when a descent step's w (the new primal iterate)
# has eta + tr S at this fraction of it: the gamma-restricted problem then may cut off every optimal X
# (tr X* > gamma). Early iterates press too (control1: gamma 15 -> 400 in its first 10 steps for tr X* = 18.8),
# and a loose gamma makes the subproblem's Frank-Wolfe gap, which carries gamma times the gradient's lowest
# eigenvalue, too coarse a test: so gamma also comes down to twice the trace where w uses under
# SHRINK_FRACTION of it.
PRESS_FRACTION = 0.999
SHRINK_FRACTION = 0.25
# A row whose gap, at the center's Ritz value, is within CLAIM_NEAR x the tolerance gets that value refined (once
# per center) so that the harness's confirmation rarely fails: to a residual whose Ritz error is CLAIM_ERROR_SHARE
# of the gap the tolerance allows (the mixing loop's rule).
CLAIM_NEAR = 10.0
CLAIM_ERROR_SHARE = 0.1
INTERIOR_FISTA_BUDGET = 10   # FISTA iterations before the interior-point method once it has been needed
# controller.full_model = auto: where the PSD blocks are small (their svec coordinates, the subproblem's size
# with every block whole, at most FULL_MODEL_SVEC), the bundle spans them whole and the model is exact there:
# each step is then the proximal ALM step itself. The low-rank bundle learned X*'s rank in such blocks one null
# step at a time: control2 / control3 (blocks of order 20 + 10, 30 + 15) ended at eps 4.9e-3 / 2e-2 after 30 s,
# 2.4e-5 / 4.1e-6 with the whole blocks; qap6 (one block of 37) 3.2e-3 -> 3.3e-4; truss3 (6 blocks of order 5)
# converged in 45 iterations (0.45 s), where the bundle's primal crept from eps 1e-5 to 1.3e-6 over 1900 null
# steps at a dual center already optimal to 1e-9; truss2 (33 blocks of order 4) 56 iterations (2.6 s) against
# the bundle's 333 (10 s), once the Newton systems kept their digits (bala_interior.NEWTON_RESIDUAL).
# Larger blocks switch to whole during the run, once the bundle holds FULL_MODEL_SWITCH_SHARE of their order
# and they have at most FULL_MODEL_SWITCH_SVEC coordinates: there X* has high rank, and the bundle crept
# (control4, blocks 40 + 20: eps 0.12 after 40 s with the bundle, 5.3e-6 after 60 s whole; truss5, 33 blocks
# of order 10: 2.7e-2 / 4.9e-6 at 90 s; qap7: 2.1e-3 / 1e-4), while theta1 (one block of 50, X* of rank ~7,
# the bundle at most 20 columns) stays low-rank: 1.3 s to 1e-6, 18 s whole.
FULL_MODEL_SVEC = 800
FULL_MODEL_SWITCH_SHARE = 0.5
FULL_MODEL_SWITCH_SVEC = 2000
FULL_MODEL_MAX_SVEC = 20000   # controller.full_model = true above this: an error (the subproblem's Gram is its square)
PERSISTENT_MISSES = 3   # subproblems in a row that FISTA alone did not solve: the fallback then takes larger systems


def ritz_error(found, scale: float) -> float:
    """The Ritz value's estimated error, residual^2 / gap (0 for the dense oracle's exact eigenvalues): the
    harness tests a claim that far below it first (measure.claim_tests)."""
    return found.residual ** 2 / found.spread(scale)


def claimable_objective(problem: ConicSDP, factor: Tensor, objective: float) -> float:
    """The primal value a claim would rest on: that of the factor rescaled to exact feasibility (diag(X) = b,
    the harness's best candidate there), else w's own."""
    feasible = problem.feasible_factor(factor)
    return objective if feasible is None else float((problem.c_mm(feasible) * feasible).sum())


# A face constraint's multiplier starts where its term in the slack has norm FACE_WEIGHT times the slack's
# Gershgorin scale (gpp100: y_J = -1e4 scale / n converged in 50 iterations, -100 in 32; 0 never).
FACE_WEIGHT = 1e4


def adapted_gamma(gamma: float, trace_w: float, floor: float, cap: float) -> float:
    """gamma after a descent step whose w has trace trace_w: doubled (up to the certified bound `cap`) when w
    presses against it, lowered to 2 trace_w (not below the starting `floor`) when w uses under a quarter."""
    if trace_w >= PRESS_FRACTION * gamma:
        return min(2 * gamma, cap)
    if trace_w < SHRINK_FRACTION * gamma:
        return max(2 * trace_w, floor)
    return gamma


def extend_basis(kept: Tensor, new: Tensor) -> Tensor:
    """[kept, orthonormal part of `new` orthogonal to kept] (dependent directions dropped)."""
    scale = max(float(new.norm(dim=0).max()), 1e-300) if new.shape[1] else 1.0
    for _ in range(2):
        new = new - kept @ (kept.T @ new)
    q, r = torch.linalg.qr(new)
    # Relative to the new columns' own norms: a block wholly inside span(kept) (the order n is reached, as on
    # the small truss and control problems) has every |r_ii| at round-off, and a threshold relative to the
    # largest of them kept it all: P grew past n columns and the model lost its meaning.
    keep = r.diagonal().abs() > 1e-8 * scale
    # Once more at unit scale: a direction that was nearly in span(kept) (residual ~1e-7) keeps round-off
    # of relative size 1e-16 / 1e-7 along kept after normalising, and the model's trace constraint
    # tr S <= gamma equals tr P S P^T only while P^T P = I.
    q = q[:, keep]
    q = q - kept @ (kept.T @ q)
    q, _ = torch.linalg.qr(q)
    return torch.cat([kept, q], dim=1)


def svec_coordinates(ranges: list[tuple[int, int]]) -> int:
    return sum((hi - lo) * (hi - lo + 1) // 2 for lo, hi in ranges)


def switches_to_whole(columns: int, ranges: list[tuple[int, int]], full_model: bool | str) -> bool:
    """Whether a low-rank bundle of `columns` columns switches to whole blocks (auto: FULL_MODEL_SWITCH_*)."""
    return (full_model == "auto" and svec_coordinates(ranges) <= FULL_MODEL_SWITCH_SVEC
            and columns >= FULL_MODEL_SWITCH_SHARE * sum(hi - lo for lo, hi in ranges))


def whole_blocks(n: int, ranges: list[tuple[int, int]], full_model: bool | str,
                 device: torch.device) -> Tensor | None:
    """The unit vectors of every PSD row (n x sum of the block orders) where the bundle is to span the blocks
    whole (controller.full_model; auto: FULL_MODEL_SVEC), else None."""
    svec_size = svec_coordinates(ranges)
    if full_model is True and svec_size > FULL_MODEL_MAX_SVEC:
        raise UserError(f"controller.full_model=true: the PSD blocks have {svec_size} svec coordinates, more than "
                        f"the {FULL_MODEL_MAX_SVEC} a whole-block subproblem can take; use auto or false")
    if not ranges or not (full_model is True or (full_model == "auto" and svec_size <= FULL_MODEL_SVEC)):
        return None   # (no PSD block: an LP in SDPA form, whose entries are subproblem variables anyway)
    on = np.concatenate([np.arange(lo, hi) for lo, hi in ranges])
    eye = torch.zeros(n, on.size, dtype=torch.float64, device=device)
    eye[torch.as_tensor(on, device=device), torch.arange(on.size, device=device)] = 1.0
    return eye


def iterate(problem: ConicSDP, ctl: BALA, ctx: RunContext, start: dict | None = None) -> Iterator[ConicIterate]:
    device = ctx.device
    numpy_kernels = numpy_path(device)   # else torch ops: the device=cuda path (conic/kernels.py)
    problem.to(device)
    r_c = new_vectors(ctl.r_c, problem)
    n, gamma, b = problem.n, problem.gamma, problem.b

    def dual_function(y: Tensor, lam: float) -> float:
        """g(y) = -min_Omega L(., y) = -<b, y> - gamma min(0, lambda_min): BALA minimises it."""
        return -(float(b @ y) + gamma * min(0.0, lam))
    oracle = BlockLOBPCG(n, device, max_iter=ctl.eig_max_iter, seed=ctx.seed)
    scale = problem.slack(problem.initial_dual()).gershgorin()

    n_lp = int(problem.lp_index.size)
    # Several PSD blocks: every bundle column inside one block and S block-diagonal (bala_blocks.py).
    ranges = psd_block_ranges(problem.block_sizes)
    rows = row_blocks(n, ranges) if len(ranges) > 1 else None
    blocks_of = (lambda p: column_blocks(p, rows)) if rows is not None else (lambda p: None)  # noqa: E731
    # r_p_max caps the bundle of one large block; with several blocks it caps each (truss5: 33 blocks of order 10
    # where X* has rank 6-7 in each, 226 in all, and 40 columns stalled at eps 0.4).
    rank_cap = None if rows is None else sum(min(hi - lo, ctl.r_p_max) for lo, hi in ranges)

    def extended(kept: Tensor, new: Tensor) -> Tensor:
        return extend_basis(kept, new) if rows is None else extend_basis_blocks(kept, new, rows, extend_basis)

    # every PSD row's unit vector, or None (also once the run switched to whole blocks: switches_to_whole)
    whole = whole_blocks(n, ranges, True if (start or {}).get("whole") else ctl.full_model, device)

    def with_whole(basis: Tensor) -> Tensor:
        return basis if whole is None else extended(basis, whole)

    if n_lp:   # the diagonal (LP) blocks' entries are subproblem variables of their own, not bundle directions
        a_lp, c_lp = problem.lp_columns()
        lp_rows = torch.as_tensor(problem.lp_index, device=device)

    def eigenpairs(slack, block_size: int, tol: float):
        """The oracle: LOBPCG over the PSD blocks (the LP coordinates moved above the spectrum) and the LP
        blocks' smallest diagonal entry; returns the eigen-result and lambda_min over all blocks."""
        slack, lp_min = problem.psd_slack(slack)
        if numpy_kernels and rows is not None and max(hi - lo for lo, hi in ranges) <= DENSE_ORACLE_ORDER:
            found = block_dense_eigenpairs(slack, ranges, r_c, block_size)
            return found, min(float(found.values[0]), lp_min)
        if numpy_kernels and n <= DENSE_ORACLE_ORDER:
            found = dense_eigenpairs(slack, r_c, block_size)
            return found, min(float(found.values[0]), lp_min)
        hint = lowest_eigenvector(slack, oracle.block) if n > KRYLOV_LEAD_ORDER else None
        found = oracle(slack, r_c, block_size, tol, hint=hint, trailing_tol=TRAILING_TOL_FACTOR * tol)
        return found, min(float(found.values[0]), lp_min)

    if start is None and warm_start_applies(ctl.warm_start, problem):   # the primal phase (bala_warm.py)
        ctl.start(problem.c_norm, n, gamma)
        phase = primal_phase(problem, ctl.warm_start_factor * problem.tol, ctl.warm_start_max_sweeps, ctx.seed,
                             ctl.r_p_min + r_c)
        y = torch.from_numpy(phase.y).to(device)
        t1 = time.perf_counter()
        tol, eig_iters = ORACLE_TOL_CAP * scale, 0
        # V's directions lead the oracle's first block: near a stationary V they span the bottom of the spectrum
        # of C - Diag(y), which a random block converged loosely can miss (G22 then stalled at 4.9e-6).
        oracle.block = torch.from_numpy(phase.basis).to(device)
        for _ in range(2):
            # Then once more as tight as the center needs: an optimistic g(y) (a Ritz value above lambda_min)
            # at a center this close to the optimum would fail every later descent test. Its error stays a
            # small share of the duality gap left, <C, V V^T> - (-g(y)).
            found, lam_y = eigenpairs(problem.slack(y), phase.basis.shape[1] + r_c + EXTRA_BLOCK, tol)
            eig_iters += found.iterations
            eig_gap = found.spread(scale)
            duality_gap = max(phase.objective + dual_function(y, lam_y), 0.0)
            tol = max(min(tol, math.sqrt(0.1 * ctl.beta * duality_gap * eig_gap / gamma)), 1e-11 * scale)
        ctl.next_rank(phase.basis.shape[1])
        start = start_state(problem, phase, found, lam_y, dual_function(y, lam_y), eig_gap, ctl.state_dict(),
                            oracle.state_dict(), n_lp)
        v = torch.from_numpy(phase.factor)
        yield ConicIterate(
            objective=phase.objective, residual=(v * v).sum(dim=1).to(device) - b, y=y, lambda_min=lam_y,
            factor=v.to(device), state=start,
            # The columns of BALA's rows (a trace file takes its header from the first row), NaN where they
            # describe a subproblem or a step that the phase did not make.
            row={"step_type": "primal_phase", "rho": ctl.state.rho, "rank": start["basis"].shape[1],
                 "rank_s": phase.basis.shape[1], "eta": start["warm"][0].item(), "subproblem_iters": 0,
                 "subproblem_newton": 0, "subproblem_gap": math.nan, "eig_iters": eig_iters,
                 "eig_residual": found.residual, "eig_tol": tol, "eig_fallbacks": oracle.fallbacks,
                 "predicted_decrease": math.nan, "cut_error": math.nan, "model_error": math.nan,
                 "dual_objective": -start["g_y"],
                 "candidate_dual": math.nan, "gamma": gamma, "trace_w": float(problem.b.sum()), "subproblem_s": 0.0,
                 "oracle_s": time.perf_counter() - t1, "primal_phase_sweeps": phase.sweeps,
                 "primal_phase_s": phase.seconds})
    if start is not None:  # a checkpoint: the center, the bundle, the oracle's block, the controller
        ctl.load_state_dict(start["controller"])
        oracle.load_state_dict(start["oracle"])
        y, basis, agg_a, warm = (start[k].to(device) for k in ("y", "basis", "agg_a", "warm"))
        g_y, lam_y, eig_gap, agg_c, use_eta = (start[k] for k in ("g_y", "lam_y", "eig_gap", "agg_c", "use_eta"))
        gamma = start.get("gamma", gamma)
    else:
        ctl.start(problem.c_norm, n, gamma)
        y = problem.initial_dual()
        # Multipliers of face constraints (<A_k, X> = 0, A_k semidefinite: gpp's <J, X> = 0) start deep in
        # their free direction, where the slack's weight on the face dwarfs the rest. Started at 0 they must
        # travel to a dual optimum that only begins far out (CSDP's y_J on gpp100: 9382), by rho <A_k, w> a
        # step, and gpp100/250-1/500-1 crept to eps 7e-6/4e-5/5e-5 in 100 s.
        faces, signs, norms = problem.face_constraints()
        if faces.size:
            y[torch.as_tensor(faces, device=device)] -= torch.as_tensor(signs * FACE_WEIGHT * scale / norms,
                                                                        device=device)
        found, lam_y = eigenpairs(problem.slack(y), ctl.r_p_min + r_c + EXTRA_BLOCK, ORACLE_TOL_CAP * scale)
        g_y = dual_function(y, lam_y)
        eig_gap = found.spread(scale)
        basis = with_whole(found.vectors if rows is None else extended(found.vectors[:, :0], found.vectors))
        # The aggregate starts as I/n: A(I)/n and tr(C)/n.
        agg_a, agg_c, use_eta = problem.constraint_traces() / n, problem.c_trace() / n, True
        warm = torch.zeros(1 + svec_indices(basis.shape[1], device, blocks_of(basis))[0].numel() + n_lp,
                           dtype=torch.float64, device=device)

    # What the loop learns from one iteration for the next. It is in the checkpoint too, so that a resumed run
    # continues exactly (control2 resumed at iteration 20 went another way when these started afresh).
    saved = start or {}
    fista_budget = saved.get("fista_budget", ctl.subproblem_max_iter)   # short once the interior method was needed
    fista_misses = saved.get("fista_misses", 0)   # subproblems in a row that FISTA alone did not solve
    cap_first = saved.get("cap_first", False)     # which interior-point variant a trace-fixing problem tries first
    lam_error = saved.get("lam_error")            # how far lam_y may lie above lambda_min (ritz_error), once known
    claim_checked = saved.get("claim_checked", False)   # the center's lambda refined for a claim (below)
    trace_fixed = problem.trace is not None and problem.trace.exact and gamma == problem.trace.bound
    col_blocks = blocks_of(basis)   # the basis's blocks and S's coordinates, kept with the basis below
    idx = svec_indices(basis.shape[1], device, col_blocks)
    while True:
        t0 = time.perf_counter()
        s = ctl.state
        r = basis.shape[1]
        if numpy_kernels and problem.has_diagonal_constraints():
            a_sub = torch.from_numpy(diagonal_constraint_matrix(basis.numpy(), agg_a.numpy()))
        else:
            pairs = (problem.constraint_gram(basis)[:, idx[0], idx[1]] if rows is None
                     else problem.constraint_gram_pairs(basis, idx[0], idx[1]))
            a_sub = torch.cat([agg_a[:, None], pairs * idx[2]], dim=1)
        ds = idx[0].numel()
        m_svec = a_sub[:, 1:1 + ds]
        c_basis = basis.T @ problem.c_mm(basis)
        c_vec = torch.cat([c_basis.new_tensor([agg_c]), svec(c_basis, idx)])
        if n_lp:
            a_sub, c_vec = torch.cat([a_sub, a_lp], dim=1), torch.cat([c_vec, c_lp])
        # numpy's A^T A takes the symmetric (syrk) path: half the flops of torch's general product.
        if numpy_kernels:
            a_rows = a_sub.numpy().T
            gram = torch.from_numpy(a_rows @ a_rows.T)
        else:
            gram = a_sub.T @ a_sub
        q = s.rho * (a_sub.T @ b) + a_sub.T @ y - c_vec
        if not use_eta:  # no aggregate: a dead eta column would only worsen the conditioning
            gram[0, :], gram[:, 0], q[0] = 0.0, 0.0, 0.0
        if numpy_kernels:
            a_np, b_np = a_sub.numpy(), b.numpy()
            residual_sq_np = lambda x: float(np.square(b_np - a_np @ x).sum())  # noqa: E731
            sub_report = {}   # filled only where the interior-point method ran
            interior_limit = (INTERIOR_SIZE_LIMIT_PERSISTENT if fista_misses >= PERSISTENT_MISSES
                              else INTERIOR_SIZE_LIMIT)
            x_np, sub_iters, sub_gap, newton = solve_subproblem_np(gram.numpy(), q.numpy(), s.rho, gamma, r,
                                                                   use_eta, warm.numpy(), residual_sq_np, ctl.kappa,
                                                                   fista_budget, factor=a_np,
                                                                   interior_fallback=ctl.subproblem_interior,
                                                                   capped=problem.gamma_adaptive or not trace_fixed,
                                                                   n_lp=n_lp, column_blocks=col_blocks,
                                                                   cap_first=cap_first, report=sub_report,
                                                                   interior_size_limit=interior_limit)
            fista_misses = 0 if sub_iters < fista_budget and not newton else fista_misses + 1   # FISTA met the rule?
            # Where the cap's barrier was needed (qap), the next subproblem tries it first: qap6 spent 60% of
            # its Newton steps on the barrier-free attempts that missed the rule.
            cap_first = sub_report.get("capped", cap_first)
            # Where FISTA needed the interior-point method, the next subproblem (a nearby one) will too: it
            # then gets only a short FISTA start.
            fista_budget = INTERIOR_FISTA_BUDGET if newton else ctl.subproblem_max_iter
            x_small = torch.from_numpy(x_np)
        else:
            sub = Subproblem(gram=gram, q=q, rho=s.rho, gamma=gamma, r=r, use_eta=use_eta, idx=idx, n_lp=n_lp)
            residual_sq = lambda x: float((b - a_sub @ x).square().sum())  # noqa: E731
            x_small, sub_iters, sub_gap = solve_subproblem(sub, warm, residual_sq, ctl.kappa,
                                                           ctl.subproblem_max_iter)
            newton = 0
        t_sub = time.perf_counter() - t0

        a_w = a_sub @ x_small
        c_w = float(c_vec @ x_small)
        infeasibility = b - a_w
        z = y + s.rho * infeasibility
        g_model_z = -(c_w + float(z @ infeasibility))      # g_k(z) = -L(w, z)
        # Both the oracle's g(y) (a Ritz value overestimates lambda_min) and -L(w, y) (w is in Omega) are lower
        # bounds on g(y); the larger is the better estimate. Without it an inexact center value could sit
        # below the model, the predicted decrease collapsed to 0 and with it the oracle tolerance (G55).
        g_y = max(g_y, -(c_w + float(y @ infeasibility)))
        predicted = max(g_y - g_model_z, 0.0)

        slack = problem.slack(z)
        # Ritz values err by ~ |residual|^2 / gap; keep that error (times gamma) a beta-fraction of the
        # predicted decrease, so the descent test is not fooled by an optimistic oracle.
        # The gap is to the block's last Ritz value, not the next one: near the optimum the first rank(X*)
        # eigenvalues coincide, and the gap inside that cluster made the tolerance needlessly tiny.
        tol = min(ORACLE_TOL_CAP * scale, math.sqrt(ctl.beta * predicted * eig_gap / gamma))
        tol = max(tol, 1e-11 * scale)
        t1 = time.perf_counter()
        found, lam_z = eigenpairs(slack, s.r_p + r_c + EXTRA_BLOCK, tol)
        t_eig = time.perf_counter() - t1
        eig_gap = found.spread(scale)
        g_z = dual_function(z, lam_z)
        descent = descent_test(g_z, g_y, g_model_z, ctl.beta)
        cut_error = math.nan
        if not descent:   # the new cut's linearization error at the center: g(y) - (its value at y) >= 0
            u = found.vectors[:, :1]
            if lam_z < float(found.values[0]):   # an LP entry is the lowest: v = gamma e_i e_i^T
                u = torch.zeros_like(u)
                u[lp_rows[int(np.argmin(slack.scipy().diagonal()[problem.lp_index]))], 0] = 1.0
            curvature = float((u * problem.slack(y).mm(u)).sum()) if lam_z < 0 else 0.0
            cut_error = gamma * (curvature - min(0.0, lam_y)) if lam_z < 0 else -gamma * min(0.0, lam_y)
        rho_used = s.rho
        ctl.record_step(descent, far=descent or far_null(cut_error, g_z - g_model_z, predicted),
                        exact_model=whole is not None)
        if descent:
            y, g_y, lam_y = z, g_z, lam_z
            lam_error = ritz_error(found, scale)

        # Model update: keep the top r_p directions of S, fold the rest (and eta W) into the aggregate.
        eta = float(x_small[0]) if use_eta else 0.0
        x_lp = x_small[1 + ds:]
        trace_w = eta + float(x_small[1:1 + ds][idx[0] == idx[1]].sum()) + float(x_lp.sum())
        gamma_used = gamma
        if descent and problem.gamma_adaptive:
            gamma = adapted_gamma(gamma, trace_w, problem.gamma, problem.trace_cap)
            if gamma != gamma_used:
                # The model's points all lie in the new Omega (the subproblem caps eta + tr S by gamma), so it
                # stays a lower approximation of the new g; only the center's value changes (lambda_min known).
                g_y = dual_function(y, lam_y)
        s_matrix = smat(x_small[1:1 + ds], r, idx)
        relative = RANK_RELATIVE_INTERIOR if newton else RANK_RELATIVE
        if rows is None:
            lam_s, vec_s = torch.linalg.eigh(s_matrix)
            lam_s, vec_s = lam_s.flip(0).clamp(min=0), vec_s.flip(1)
            rank_s = int((lam_s > relative * max(float(lam_s[0]), 1e-300)).sum())
        else:
            lam_s, vec_s, rank_s = ranked_block_eigh(s_matrix, col_blocks, relative)
        keep = min(ctl.next_rank(rank_s, rank_cap), r)
        lam_keep = lam_s[:keep]
        folded_s = (vec_s[:, keep:] * lam_s[keep:]) @ vec_s[:, keep:].T
        weight = eta + float(lam_s[keep:].sum())
        if weight > 1e-12 * gamma:
            agg_a = ((agg_a * eta) if use_eta else 0.0) + m_svec @ svec(folded_s, idx)
            agg_a = agg_a / weight
            agg_c = ((agg_c * eta) if use_eta else 0.0) + float((c_basis * folded_s).sum())
            agg_c = agg_c / weight
            use_eta = True
        else:
            use_eta, weight = False, 0.0
        # The factor is all of S (the kept directions usually are, r_p >= rank(S) + 2 unless capped): the
        # runner rescales its rows into an exactly feasible X, and rounding draws on it.
        lifted = basis @ vec_s[:, :max(keep, rank_s)]
        kept = lifted[:, :keep]
        factor = lifted[:, :rank_s] * lam_s[:rank_s].sqrt()
        if n_lp:   # the LP entries as columns sqrt(x_i) e_i
            on = torch.nonzero(x_lp > 0).flatten()
            lp_factor = torch.zeros(n, on.numel(), dtype=torch.float64, device=device)
            lp_factor[lp_rows[on], torch.arange(on.numel(), device=device)] = x_lp[on].sqrt()
            factor = torch.cat([factor, lp_factor], dim=1)
        basis = with_whole(extended(kept, found.vectors))
        if whole is None and switches_to_whole(basis.shape[1], ranges, ctl.full_model):
            whole = whole_blocks(n, ranges, True, device)
            basis = with_whole(basis)
        r_new = basis.shape[1]
        col_blocks = blocks_of(basis)
        idx = svec_indices(r_new, device, col_blocks)
        warm_s = torch.zeros(r_new, r_new, dtype=torch.float64, device=device)
        warm_s[:keep, :keep] = torch.diag(lam_keep)
        warm = torch.cat([warm_s.new_tensor([weight]), svec(warm_s, idx), x_lp])

        if descent:
            claim_checked = False
        if not claim_checked and relative_gap(claimable_objective(problem, factor, c_w),
                                              problem.dual_bound(y, lam_y)) <= CLAIM_NEAR * problem.tol:
            # A claim is near, and the harness confirms each by a reliable lambda_min (a failed one cost 0.2-1 s
            # on G43/G22, more than an iteration): first the center's lambda to the claim's accuracy, a Ritz
            # value within CLAIM_ERROR_SHARE of the tolerance's gap (error ~ residual^2 / spectral gap).
            claim_checked = True
            allowed = CLAIM_ERROR_SHARE * problem.tol * (1 + 2 * abs(c_w)) / gamma
            t1 = time.perf_counter()
            refined, lam_refined = eigenpairs(problem.slack(y), s.r_p + r_c + EXTRA_BLOCK,
                                              max(min(tol, math.sqrt(allowed * eig_gap)), 1e-11 * scale))
            t_eig += time.perf_counter() - t1
            if lam_refined < lam_y:
                lam_y, g_y = lam_refined, dual_function(y, lam_refined)
            lam_error = ritz_error(refined, scale)   # lambda_min >= lam_refined - this, and lam_y <= lam_refined
        yield ConicIterate(
            objective=c_w, residual=-infeasibility, y=y, lambda_min=lam_y, factor=factor, lambda_error=lam_error,
            row={"step_type": "descent" if descent else "null", "rho": rho_used, "rank": r, "rank_s": rank_s,
                 "eta": eta, "subproblem_iters": sub_iters, "subproblem_newton": newton, "subproblem_gap": sub_gap,
                 "eig_iters": found.iterations, "eig_residual": found.residual, "eig_tol": tol,
                 "eig_fallbacks": oracle.fallbacks, "predicted_decrease": predicted, "cut_error": cut_error,
                 "model_error": g_z - g_model_z, "dual_objective": -g_y, "candidate_dual": -g_z, "gamma": gamma_used,
                 "trace_w": trace_w, "subproblem_s": t_sub,
                 "oracle_s": t_eig, "primal_phase_sweeps": 0, "primal_phase_s": 0.0},
            state={"controller": ctl.state_dict(), "oracle": oracle.state_dict(), "y": y.cpu(), "basis": basis.cpu(),
                   "agg_a": agg_a.cpu(), "warm": warm.cpu(), "g_y": g_y, "lam_y": lam_y, "eig_gap": eig_gap,
                   "agg_c": float(agg_c), "use_eta": use_eta, "gamma": gamma, "fista_budget": fista_budget,
                   "fista_misses": fista_misses, "cap_first": cap_first, "lam_error": lam_error,
                   "claim_checked": claim_checked, "whole": whole is not None})
