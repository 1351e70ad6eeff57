"""BALA's primal phase on diag(X) = b problems (Max-Cut): a few mixing-method sweeps give BALA its start.

The sweeps (the mixing method's compiled Gauss-Seidel pass, conic/solvers/mixing.py) move a factor V with
diag(V V^T) = b towards a stationary point; from V the bundle method gets what it would otherwise spend its first
iterations learning:
  - the dual center y_i = (C V V^T)_ii / b_i (the stationarity multipliers: exact at a stationary point);
  - the bundle P = the leading left singular vectors of V, with S = their squared singular values, so that the
    first inner set already holds X = V V^T (up to the folded tail, which goes into the aggregate);
  - the aggregate W = (the factor's remaining directions) / their trace.
  - the oracle's first block: V's directions, which span the bottom of the spectrum of C - Diag(y) near a
    stationary V (from a random block, a loosely converged LOBPCG missed some and G22 stalled at 4.9e-6).
Then BALA runs as always from that state (the state a checkpoint would restore): its iterations, rho rule,
oracle and certificate are unchanged. The phase stops while the factor is still far from the tolerance (the
sweeps' extrapolated remaining decrease at controller.warm_start_factor x problem.tol, not below 1e-5; its
certified eps is then ~10x higher still: 1e-4 on G22 and G43 for a run to 1e-6), so that BALA, not the sweeps,
closes the gap. Its row in the trace (step_type "primal_phase") carries its sweeps and seconds; bench.sdp shows
them apart. Measured (1e-6): G1/G14/G22/G43 take 10-13 BALA iterations after 50-78 sweeps, against 30/44/41/30
from y0 = diag(C).
"""

from __future__ import annotations

import importlib.util
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from alm_bench.conic.problems import ConicSDP, factor_rank
from alm_bench.conic.solvers.mixing import random_factor, sweep_kernel, sweep_operands
from alm_bench.errors import UserError

# Singular values of V whose square is below this fraction of the largest go to the aggregate, not the bundle:
# the bundle's columns cost r^2 in the subproblem, and V's rank (ceil(sqrt(2n)) + 1) is far above rank(X*).
BUNDLE_RELATIVE = 1e-2
# The sweeps' own target is never below this: their rate is linear and slows near the optimum (G1: 50 sweeps to
# 1e-5, 331 to a certified 1e-6), where BALA's bundle converges faster; a run to 1e-9 is BALA's, not theirs.
PHASE_TOL_FLOOR = 1e-5
# Nor does it stop before this many sweeps: the ratio of the first sweeps' decreases from a random V is the
# transient's, far below the linear rate, and extrapolated the phase to its target after 2-4 sweeps (G14 at eps
# 1.9e-2, then 11 BALA iterations). With 15, to 5e-4 (one run each, bench.sdp): G1 0.17 -> 0.08 s, G14 0.28 ->
# 0.16, G22 0.51 -> 0.36, G43 0.20 -> 0.11, G11 0.58 -> 0.45, G48 1.14 -> 0.84; runs to 1e-6 sweep 50-1000 anyway.
MIN_SWEEPS = 15


@dataclass
class PrimalPhase:
    """The primal phase's outcome: V, its multipliers y, and the split of V V^T into bundle and aggregate."""

    factor: np.ndarray        # V, n x k, rows of norm sqrt(b_i)
    y: np.ndarray             # (C V V^T)_ii / b_i
    objective: float          # <C, V V^T>
    basis: np.ndarray         # P: V's leading left singular vectors (orthonormal)
    s_values: np.ndarray      # S = diag(s_values) on P
    agg_a: np.ndarray         # diag(W) of the aggregate W (tr W = 1) ...
    agg_c: float              # ... and <C, W>
    agg_weight: float         # eta: the trace V V^T puts on the aggregate
    sweeps: int
    seconds: float


def primal_phase(problem: ConicSDP, tol: float, max_sweeps: int, seed: int, max_bundle: int) -> PrimalPhase:
    """Mixing sweeps from a random V until the sweeps' decrease, extrapolated at its observed linear rate, says
    the objective is within `tol` (relative, as eps_g) of the factorised optimum, or `max_sweeps`."""
    t0 = time.perf_counter()
    tol = max(tol, PHASE_TOL_FLOOR)
    indptr, indices, data, c_diag = sweep_operands(problem)
    b = problem.b_np
    radius = np.sqrt(np.clip(b, 0, None))
    rank = factor_rank(problem.m, problem.n)
    v = random_factor(problem.n, rank, radius, seed)
    sweep = sweep_kernel()
    g, y_sweep = np.empty(rank), np.empty(problem.n)
    c = problem.c_op.matrix.tocsr()
    objective = float(((c @ v) * v).sum())
    previous, sweeps = math.inf, 0
    while sweeps < max_sweeps:
        decrease = sweep(indptr, indices, data, v, radius, g, y_sweep, c_diag)
        sweeps += 1
        objective -= decrease
        if sweeps >= MIN_SWEEPS and 0 < previous < math.inf and decrease < previous:
            rate = decrease / previous
            if decrease * rate / (1 - rate) <= tol * (1 + 2 * abs(objective)):
                break
        previous = decrease
    cv = c @ v
    objective = float((cv * v).sum())
    y = (cv * v).sum(axis=1) / np.where(b != 0, b, 1.0)
    # V's singular directions from the small Gram V^T V (numpy's SVD of the n x k matrix took 150 ms on G1).
    power, right = np.linalg.eigh(v.T @ v)
    power, right = np.clip(power[::-1], 0, None), right[:, ::-1]
    kept = min(max(1, int((power > BUNDLE_RELATIVE * power[0]).sum())), max_bundle)
    left = np.linalg.qr(v @ right[:, :kept])[0]
    tail = v @ right[:, kept:]
    weight = float(power[kept:].sum())
    agg_a = (tail * tail).sum(axis=1) / weight if weight > 0 else np.zeros(problem.n)
    agg_c = float(((c @ tail) * tail).sum()) / weight if weight > 0 else 0.0
    return PrimalPhase(factor=v, y=y, objective=objective, basis=left, s_values=power[:kept],
                       agg_a=agg_a, agg_c=agg_c, agg_weight=weight, sweeps=sweeps,
                       seconds=time.perf_counter() - t0)


def as_tensor(a: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


def warm_start_applies(setting: bool | str, problem: ConicSDP) -> bool:
    """controller.warm_start: "auto" = on where the constraints are diag(X) = b (Max-Cut type: the sweeps apply
    there) and numba (which compiles them) is installed; true asks for it and refuses other problems."""
    if setting == "auto":
        return problem.has_diagonal_constraints() and importlib.util.find_spec("numba") is not None
    if setting and not problem.has_diagonal_constraints():
        raise UserError(f"controller.warm_start=true: the primal phase (mixing sweeps) needs constraints "
                        f"diag(X) = b (Max-Cut type); {problem.source} has others (use auto or false)")
    return bool(setting)


def start_state(problem: ConicSDP, phase: PrimalPhase, found, lam_y: float, g_y: float, eig_gap: float,
                controller_state: dict, oracle_state: dict, n_lp: int) -> dict:
    """The phase's outcome as BALA's loop state (the one a checkpoint restores): center y, bundle [P, the
    oracle's new eigenvectors], aggregate, and the subproblem's warm start (eta, S = diag(sigma^2) on P)."""
    from alm_bench.conic.solvers.bala_loop import extend_basis   # the loop imports this module
    from alm_bench.conic.solvers.bala_subproblem import svec, svec_indices

    device = found.vectors.device
    basis = extend_basis(as_tensor(phase.basis, device), found.vectors)
    r, kept = basis.shape[1], phase.basis.shape[1]
    warm_s = torch.zeros(r, r, dtype=torch.float64, device=device)
    warm_s[:kept, :kept] = torch.diag(as_tensor(phase.s_values, device))
    use_eta = phase.agg_weight > 1e-12 * float(problem.b.sum())
    if use_eta:
        agg_a, agg_c = as_tensor(phase.agg_a, device), phase.agg_c
    else:   # nothing folded: the aggregate is unused until a later iteration folds directions into it
        agg_a, agg_c = problem.constraint_traces() / problem.n, problem.c_trace() / problem.n
    eta = phase.agg_weight if use_eta else 0.0
    warm = torch.cat([warm_s.new_tensor([eta]), svec(warm_s, svec_indices(r, device)),
                      torch.zeros(n_lp, dtype=torch.float64, device=device)])
    return {"controller": controller_state, "oracle": oracle_state, "y": as_tensor(phase.y, device).cpu(),
            "basis": basis.cpu(), "agg_a": agg_a.cpu(), "warm": warm.cpu(), "g_y": g_y, "lam_y": lam_y,
            "eig_gap": eig_gap, "agg_c": float(agg_c), "use_eta": use_eta, "gamma": problem.gamma}
