"""The mixing method (Wang, Chang & Kolter 2017) on a diag(X) = b SDP, with the same certificate as BALA.

One sweep updates every row of V in turn (Gauss-Seidel, rows in order): v_i <- -sqrt(b_i) g_i / |g_i|, with
g_i = sum_{j != i} C_ij v_j, at rank ceil(sqrt(2n)) + 1. The sweep is compiled by numba (the authors' program
is C; a Python loop over rows was 30x slower than it). The dual point is y_i = (C V)_i . v_i / b_i, exactly
feasible after the shift by lambda_min(C - Diag(y)), so the error is the gap, eps_g.

The certificate must not dominate a method whose sweep costs ~0.3 ms (G1): a warm LOBPCG for lambda_min costs
~60 sweeps there. So each sweep updates a cheap estimate of the gap instead: the smallest Ritz value of
C - Diag(y) on a small basis P from the last LOBPCG (n r^2 per sweep, since P^T C P is fixed per basis and the
sweep yields y). A Ritz value overestimates lambda_min, so the estimated gap can only be optimistic: a claim (a
trace row whose estimate meets the tolerance) goes to the harness, which confirms it with a reliable
lambda_min before the run stops, as for every solver. The basis is refreshed at the exact y before each claim,
with a residual small enough for the claim, so that claims are rare and nearly always right (G1, G14, G22, G43:
one confirmation per run); rows in between come every `log_every` sweeps.
Plain numpy and numba on the CPU (a baseline): the simple peer that is hardest to beat on Max-Cut.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from alm_bench.conic.eigen import BlockLOBPCG
from alm_bench.conic.iterate import ConicIterate
from alm_bench.conic.problems import ConicSDP, factor_rank, relative_gap
from alm_bench.controllers.base import StateDictMixin
from alm_bench.errors import UserError, require, require_int, require_positive
from alm_bench.runners import RunContext

# The first LOBPCG (which gives the estimate its basis) runs once the sweeps' own decrease suggests the gap
# is within this factor of the tolerance: earlier, the basis would be stale by the time a claim is near.
FIRST_REFRESH_FACTOR = 10.0
# The estimate's basis: a LOBPCG block that spans the bottom of the spectrum (near the optimum lambda_min is
# rank(X*)-fold: a block of 4 stalled in that cluster), converged only loosely, since its smallest Ritz value
# at each later y, not one eigenpair to round-off, is what the estimate uses.
REFRESH_BLOCK = 16
ESTIMATE_COLUMNS = 8   # its lowest Ritz vectors that the estimate keeps: n r^2 per sweep is 3% of G1's sweep
# Its residual: a Ritz value errs by ~ residual^2 / gap, and gamma times that error must stay a small fraction
# (ERROR_SHARE) of the gap the tolerance allows, tol (1 + 2 |<C, X>|); the spectral gap is the block's last Ritz
# value less its first, from the previous refresh. At most CAP_TOL of the Gershgorin scale (the first refresh).
ERROR_SHARE = 0.1
CAP_TOL = 1e-3
REFRESH_MAX_ITER = 100   # then the block as it is (G60's near-continuum did not converge in 300)


@dataclass
class MixingState:
    sweeps: int = 0


class MixingMethod(StateDictMixin):
    """The mixing method's settings (controller=mixing): the factor's rank and how often to log a trace row."""

    accepts = ("conic",)
    resumes = ("conic",)

    def __init__(self, rank: int | None = None, max_iterations: int = 2000, log_every: int = 50,
                 time_limit_s: float | None = None) -> None:
        require(rank is None or (isinstance(rank, int) and not isinstance(rank, bool) and rank >= 1),
                "controller.rank", "an integer >= 1 or null (ceil(sqrt(2n)) + 1)", rank)
        require_int("controller.max_iterations", max_iterations)
        require_int("controller.log_every", log_every)
        if time_limit_s is not None:
            require_positive("controller.time_limit_s", time_limit_s)
        self.rank, self.max_iterations, self.log_every, self.time_limit_s = rank, max_iterations, log_every, time_limit_s
        self.state = MixingState()

    def warm_up(self) -> None:
        """Compile the sweep (or load it from numba's cache) before the run's clock starts."""
        v = np.ones((2, 1))
        sweep_kernel()(np.array([0, 1, 2]), np.array([1, 0]), np.array([-1.0, -1.0]), v, np.ones(2), np.empty(1),
                       np.empty(2), np.zeros(2))


_KERNEL = None


def sweep_kernel():
    """The compiled sweep `(indptr, indices, data, v, radius, g, y, c_diag) -> decrease of <C, V V^T>`: one
    in-place Gauss-Seidel pass over the rows of V (C without its diagonal, as CSR; `g` a scratch row), which
    also leaves each row's stationarity multiplier y_i = C_ii - |g_i| / sqrt(b_i) in `y`."""
    global _KERNEL
    if _KERNEL is None:
        try:
            import numba
        except ImportError:
            raise UserError("controller=mixing needs numba (its sweep is compiled): pip install 'alm-bench[sdp]' "
                            "(or pip install numba)") from None
        _KERNEL = numba.njit(cache=True, nogil=True)(_sweep)
    return _KERNEL


def _sweep(indptr, indices, data, v, radius, g, y, c_diag):   # compiled by sweep_kernel()
    n, k = v.shape
    decrease = 0.0
    for i in range(n):
        lo, hi = indptr[i], indptr[i + 1]
        if lo == hi:   # an isolated vertex: its row is free, and its multiplier is C_ii
            y[i] = c_diag[i]
            continue
        for col in range(k):
            g[col] = 0.0
        for p in range(lo, hi):
            w, j = data[p], indices[p]
            for col in range(k):
                g[col] += w * v[j, col]
        squares = 0.0
        for col in range(k):
            squares += g[col] * g[col]
        norm = math.sqrt(squares)
        if norm > 0:
            scale = -radius[i] / norm
            before = 0.0
            for col in range(k):
                before += g[col] * v[i, col]
                v[i, col] = g[col] * scale
            decrease += 2.0 * (before + radius[i] * norm)   # 2 g_i . (v_old - v_new)
            y[i] = c_diag[i] - norm / radius[i]
        else:
            y[i] = c_diag[i]
    return decrease


def sweep_operands(problem: ConicSDP) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """C without its diagonal as int64 CSR arrays (the compiled sweep's one signature), and diag(C)."""
    c = problem.c_op.matrix.tocsr()
    off = c - sp.diags(c.diagonal())
    off.eliminate_zeros()
    off.sort_indices()
    return (off.indptr.astype(np.int64), off.indices.astype(np.int64), np.ascontiguousarray(off.data),
            np.ascontiguousarray(c.diagonal(), dtype=np.float64))


def random_factor(n: int, rank: int, radius: np.ndarray, seed: int) -> np.ndarray:
    """A Gaussian n x rank factor with its rows scaled to norm `radius` (diag(V V^T) = b): the sweeps' start."""
    v = np.random.default_rng(seed).standard_normal((n, rank))
    v *= (radius / np.linalg.norm(v, axis=1))[:, None]
    return v


def iterate(problem: ConicSDP, ctl: MixingMethod, ctx: RunContext, start: dict | None = None) -> Iterator[ConicIterate]:
    if not problem.has_diagonal_constraints():
        raise UserError(f"controller=mixing solves SDPs whose constraints are diag(X) = b (Max-Cut); "
                        f"{problem.source} has other constraints")
    problem.to(torch.device("cpu"))
    c = problem.c_op.matrix.tocsr()
    indptr, indices, off_data, c_diag = sweep_operands(problem)
    b, gamma, tol = problem.b_np, problem.gamma, problem.tol
    radius = np.sqrt(np.clip(b, 0, None))
    safe_b = np.where(b != 0, b, 1.0)
    rank = ctl.rank or factor_rank(problem.m, problem.n)
    oracle = BlockLOBPCG(problem.n, torch.device("cpu"), max_iter=REFRESH_MAX_ITER, seed=ctx.seed)
    sweep = sweep_kernel()
    scale = problem.slack(problem.initial_dual()).gershgorin()
    if start is not None:  # a checkpoint: the factor, the sweep count, the oracle's block, the estimate's state
        v = start["v"].numpy().copy()
        ctl.load_state_dict(start["controller"])
        oracle.load_state_dict(start["oracle"])
        basis = start["basis"].numpy().copy()
        objective, previous, claims, eig_gap = (start[k] for k in ("objective", "previous", "claims", "eig_gap"))
    else:
        v = random_factor(problem.n, rank, radius, ctx.seed)
        basis, objective, previous, claims = None, float(((c @ v) * v).sum()), math.inf, 0
        eig_gap = 0.0
    basis_c = None if basis is None else basis.T @ (c @ basis)
    g, y_sweep = np.empty(rank), np.empty(problem.n)
    claim_at = (1 - ERROR_SHARE) * tol   # the estimate's own error is at most ERROR_SHARE of the tolerance
    accurate = False                      # the last refresh had a spectral gap to set its residual from

    def exact_dual() -> tuple[np.ndarray, np.ndarray]:
        cv = c @ v
        return cv, (cv * v).sum(axis=1) / safe_b

    def ritz_value(y: np.ndarray) -> float:
        """The smallest Ritz value of C - Diag(y) on the basis (>= lambda_min): P^T C P is fixed per basis, so
        this costs n r^2 per call (ESTIMATE_COLUMNS)."""
        return float(np.linalg.eigvalsh(basis_c - basis.T @ (basis * y[:, None]))[0])

    def gap_at(y: np.ndarray, lam: float) -> float:
        return relative_gap(objective, problem.dual_bound(torch.from_numpy(y), lam))

    def estimated_gap(y: np.ndarray) -> float:
        return gap_at(y, ritz_value(y))

    def refresh(y: np.ndarray, for_claim: bool) -> int:
        """LOBPCG at y, warm from its last block: the estimate's basis and P^T C P. Returns its iterations. Without
        a spectral gap yet (the first call) its residual is CAP_TOL, too loose for a claim: one more call then."""
        nonlocal basis, basis_c, eig_gap, accurate
        calls = 2 if for_claim and not eig_gap else 1
        accurate = bool(eig_gap) or calls == 2
        iterations = 0
        for _ in range(calls):
            allowed = ERROR_SHARE * tol * (1 + 2 * abs(objective)) / gamma
            residual_tol = min(CAP_TOL, math.sqrt(allowed * eig_gap) / scale) if eig_gap else CAP_TOL
            # An estimate needs no fallback to the reliable solver when LOBPCG runs out of iterations (G60):
            # a claim on it is confirmed anyway, and a failed one halves the next claim's threshold.
            found = oracle(problem.slack(torch.from_numpy(y)), 1, REFRESH_BLOCK, max(residual_tol, 1e-11) * scale,
                           fallback=False)
            iterations += found.iterations
            eig_gap = found.spread(scale)
        basis = np.linalg.qr(oracle.block.numpy()[:, :ESTIMATE_COLUMNS])[0]
        basis_c = basis.T @ (c @ basis)
        return iterations

    while True:
        t0 = time.perf_counter()
        oracle_s, eig_iters, swept = 0.0, 0, 0
        while True:
            decrease = sweep(indptr, indices, off_data, v, radius, g, y_sweep, c_diag)
            ctl.state.sweeps += 1
            swept += 1
            objective -= decrease
            if basis is None:
                # No basis yet: the sweeps' decrease, extrapolated at its observed linear rate, says how far the
                # objective still has to go; near the tolerance, LOBPCG gives the estimate its first basis.
                far = math.inf
                if 0 < previous < math.inf:
                    rate = min(decrease / previous, 0.999)
                    far = decrease * rate / (1 - rate) / (1 + 2 * abs(objective))
                due = far <= FIRST_REFRESH_FACTOR * tol
                estimate = math.inf
            else:
                # A claim rests on a current basis: it is refreshed at the exact y before each. After a claim that
                # did not hold (the harness asked for more), the next one waits for the estimate to halve.
                estimate = estimated_gap(y_sweep)
                due = estimate <= claim_at * 0.5 ** claims
            previous = decrease
            refreshed = due or (basis is None and swept >= ctl.log_every)
            if refreshed:
                t1 = time.perf_counter()
                y = exact_dual()[1]
                eig_iters += refresh(y, for_claim=basis is not None)
                oracle_s += time.perf_counter() - t1
                estimate = estimated_gap(y)
            if estimate <= claim_at * 0.5 ** claims or swept >= ctl.log_every:
                break
        cv, y = exact_dual()
        objective = float((cv * v).sum())   # exact again (the sweeps' running decrease drifts by round-off)
        if not (refreshed and accurate) and estimated_gap(y) <= tol:   # the harness would take this for a claim
            t1 = time.perf_counter()
            eig_iters += refresh(y, for_claim=True)
            oracle_s += time.perf_counter() - t1
        lam = ritz_value(y)   # a Ritz value: >= lambda_min, so the harness confirms a claim before it stops
        claims += gap_at(y, lam) <= tol
        residual = torch.from_numpy((v * v).sum(axis=1) - b)
        factor = torch.from_numpy(v.copy())   # sweeps change v in place
        yield ConicIterate(objective=objective, residual=residual, y=torch.from_numpy(y), lambda_min=lam,
                           factor=factor, lambda_error=math.inf,
                           state={"v": factor, "controller": ctl.state_dict(), "oracle": oracle.state_dict(),
                                  "basis": torch.from_numpy(basis.copy()), "objective": objective,
                                  "previous": previous, "claims": claims, "eig_gap": eig_gap},
                           row={"sweeps": ctl.state.sweeps, "rank": rank,
                                "eig_iters": eig_iters,
                                "eig_fallbacks": oracle.fallbacks, "sweep_s": time.perf_counter() - t0 - oracle_s,
                                "oracle_s": oracle_s})
