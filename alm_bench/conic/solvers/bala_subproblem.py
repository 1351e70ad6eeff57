"""BALA's subproblem on the spectral bundle: min_x 1/2 x^T (rho G) x - q^T x over x = (eta, svec S) with
eta >= 0, S PSD, eta + tr S <= gamma, solved by FISTA with an exact projection (an r x r eigendecomposition).

Two paths run the same iteration: torch tensors (`Subproblem`, `solve_subproblem`: the device=cuda path) and
numpy arrays (`solve_subproblem_np`: the CPU path, where torch's per-op overhead dominated), chosen by
alm_bench/conic/kernels.py. svec stacks the upper triangle with sqrt 2 off the diagonal, so that
<S, T> = svec(S) . svec(T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import torch
from torch import Tensor


def capped_simplex_projection(v: Tensor, cap: float) -> Tensor:
    """Euclidean projection of v onto {x >= 0, sum x <= cap} (sorting algorithm)."""
    clipped = v.clamp(min=0)
    if float(clipped.sum()) <= cap:
        return clipped
    u, _ = torch.sort(v, descending=True)
    cumulative = torch.cumsum(u, 0) - cap
    index = torch.arange(1, v.numel() + 1, dtype=v.dtype, device=v.device)
    active = u - cumulative / index > 0
    k = int(active.nonzero().max()) if bool(active.any()) else 0
    tau = cumulative[k] / (k + 1)
    return (v - tau).clamp(min=0)


def block_pairs(r: int, column_blocks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The upper-triangle pairs (a <= b) of S's coordinates. With `column_blocks` (the PSD block each bundle
    column lies in) only pairs inside one block: p_a p_b^T across two blocks is invisible to block-diagonal
    A_k and C, so S is block-diagonal and the subproblem has sum_b r_b (r_b + 1) / 2 coordinates, not
    r (r + 1) / 2 (truss5: 33 blocks of order 10)."""
    a, b = np.triu_indices(r)
    if column_blocks is None:
        return a, b
    same = column_blocks[a] == column_blocks[b]
    return a[same], b[same]


def svec_indices(r: int, device: torch.device,
                 column_blocks: np.ndarray | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Upper-triangle indices (a <= b; within one block where `column_blocks` is given: `block_pairs`) and the
    svec weights (1 on the diagonal, sqrt 2 off it), which make <S, T> = svec(S) . svec(T)."""
    if column_blocks is None:
        a, b = torch.triu_indices(r, r, device=device)
    else:
        a, b = (torch.from_numpy(v).to(device) for v in block_pairs(r, column_blocks))
    # Built in float64 from the start: torch.where on Python scalars gives float32, whose sqrt 2 is off by
    # 2e-8 relative; that made the svec inner product inexact and the model disagree with g at the 1e-9
    # level (a stall in null steps near eps 1e-5).
    weight = torch.full(a.shape, math.sqrt(2.0), dtype=torch.float64, device=device)
    weight[a == b] = 1.0
    return a, b, weight


def svec(s: Tensor, idx: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    a, b, weight = idx
    return s[a, b] * weight


def smat(x: Tensor, r: int, idx: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    a, b, weight = idx
    s = torch.zeros(r, r, dtype=x.dtype, device=x.device)
    s[a, b] = x / weight
    s[b, a] = x / weight
    return s


@dataclass
class Subproblem:
    """min_x  1/2 x^T (rho G) x - q^T x  over x = (eta, svec S, x_lp) with eta >= 0, S PSD, x_lp >= 0,
    eta + tr S + sum x_lp <= gamma, where G = A_sub^T A_sub and A_sub = [A(W), A(p_a p_b^T) in svec order,
    A(e_i e_i^T) for the coordinates i of the diagonal (LP) blocks]. `use_eta` False drops eta."""

    gram: Tensor          # (1 + d + n_lp, 1 + d + n_lp)
    q: Tensor
    rho: float
    gamma: float
    r: int
    use_eta: bool
    idx: tuple[Tensor, Tensor, Tensor]
    n_lp: int = 0

    def project(self, x: Tensor) -> Tensor:
        ds = self.idx[0].numel()
        s = smat(x[1:1 + ds], self.r, self.idx)
        lam, q = torch.linalg.eigh(s)
        head = x[:1] if self.use_eta else x[:0]
        values = capped_simplex_projection(torch.cat([head, lam, x[1 + ds:]]), self.gamma)
        eta = values[:1] if self.use_eta else x.new_zeros(1)
        lam = values[head.numel(): head.numel() + self.r]
        return torch.cat([eta, svec((q * lam) @ q.T, self.idx), values[head.numel() + self.r:]])

    def gradient(self, x: Tensor) -> Tensor:
        return self.rho * (self.gram @ x) - self.q

    def frank_wolfe_gap(self, x: Tensor, grad: Tensor) -> float:
        """grad^T x - min_{feasible u} grad^T u: the subproblem's certified suboptimality."""
        ds = self.idx[0].numel()
        lam_min = float(torch.linalg.eigvalsh(smat(grad[1:1 + ds], self.r, self.idx))[0])
        candidates = [0.0, lam_min] + ([float(grad[0])] if self.use_eta else [])
        if self.n_lp:
            candidates.append(float(grad[1 + ds:].min()))
        return float(grad @ x) - self.gamma * min(candidates)


def fista(project, gradient, fw_gap, residual_sq, x0, step: float, rho: float, kappa: float, max_iter: int,
          check_every: int = 5):
    """FISTA with gradient restart and an exact projection, from x0, on torch tensors or numpy arrays alike
    (arrays are only rebound, never changed in place). Stops when the Frank-Wolfe gap is below
    kappa^2 * (rho/2) |b - A x|^2. Returns x, iterations, final gap."""
    x = project(x0)
    y, t = x, 1.0
    gap = float("inf")
    for it in range(1, max_iter + 1):
        x_new = project(y - step * gradient(y))
        if float((y - x_new) @ (x_new - x)) > 0:
            # Gradient restart (O'Donoghue & Candes) with the gradient mapping (y - x_new) / step: the raw
            # gradient stays large at a constrained optimum and restarted a third of all iterations, which
            # left little momentum (twice the iterations). Drop the momentum, keep the step.
            y, t = x_new, 1.0
        else:
            t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
            y = x_new + ((t - 1) / t_new) * (x_new - x)
            t = t_new
        x = x_new
        if it % check_every == 0 or it == max_iter:
            gap = fw_gap(x, gradient(x))
            if gap <= kappa ** 2 * 0.5 * rho * residual_sq(x):
                return x, it, gap
    return x, max_iter, gap


def solve_subproblem(sub: Subproblem, x0: Tensor, residual_sq: "callable", kappa: float,
                     max_iter: int, check_every: int = 5) -> tuple[Tensor, int, float]:
    """FISTA with gradient restart and the exact projection, from x0. Stops when the Frank-Wolfe gap is
    below kappa^2 * (rho/2) |b - A x|^2, tying the subproblem's error to the decrease BALA predicts (a
    fixed tolerance is either too loose, stalling eps_p, or too tight, wasting time).
    `residual_sq(x)` gives |b - A x|^2. Returns x, iterations, final gap."""
    lipschitz = sub.rho * float(torch.linalg.eigvalsh(sub.gram)[-1])
    step = 1.0 / max(lipschitz, 1e-300)
    return fista(sub.project, sub.gradient, sub.frank_wolfe_gap, residual_sq, x0, step, sub.rho, kappa,
                 max_iter, check_every)


# The interior-point fallback's Newton system has order min(constraints + 1, len x); above this its steps cost
# more than FISTA's remaining iterations save (mcp500-1: 18 s a subproblem at order 1486 where rank X* = 60).
INTERIOR_SIZE_LIMIT = 400
# ... unless FISTA misses its rule subproblem after subproblem (the loop decides: bala_loop.PERSISTENT_MISSES),
# where up to this order the Newton steps pay: theta3 (order 529, m = 1106) ran 500 FISTA iterations on every
# subproblem from its 70th and crept to eps 2e-5 in 60 s; with the interior-point method, 5e-6. A single miss
# does not qualify: maxG11 (order 466) missed once, and then solving every subproblem by Newton steps took it
# from 3.2 to 5.8 s to 1e-6.
INTERIOR_SIZE_LIMIT_PERSISTENT = 800

# ---- CPU fast path ----------------------------------------------------------------------------------
# Each FISTA iteration is a handful of tiny ops (r ~ 20, m ~ 200) around one r x r eigendecomposition: in
# torch on the CPU the per-op overhead made it ~0.5 ms; in numpy it is close to the eigh itself.

def capped_simplex_projection_np(v: np.ndarray, cap: float) -> np.ndarray:
    """`capped_simplex_projection` on a numpy vector."""
    clipped = np.maximum(v, 0.0)
    if clipped.sum() <= cap:
        return clipped
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - cap
    active = np.flatnonzero(u - cumulative / np.arange(1, v.size + 1) > 0)
    k = int(active[-1]) if active.size else 0
    return np.maximum(v - cumulative[k] / (k + 1), 0.0)


class SvecMaps:
    """Index maps between svec (upper triangle, sqrt 2 off the diagonal; only the pairs inside one block where
    `column_blocks` is given, `block_pairs`) and a flat r x r matrix, 0 outside those pairs. FISTA calls them
    on every iteration, so smat fills a preallocated buffer: its result is a view that the next call
    overwrites (every caller uses it at once)."""

    def __init__(self, r: int, column_blocks: np.ndarray | None = None) -> None:
        a, b = block_pairs(r, column_blocks)
        self.r, self.a, self.b, self.size, self.blocks = r, a, b, a.size, column_blocks
        self.weight = np.where(a == b, 1.0, math.sqrt(2.0))
        self.inv_weight = 1.0 / self.weight
        self.tri = a * r + b                      # flat positions of the upper triangle
        full = np.full((r, r), a.size, dtype=np.int64)   # a.size: the zero past the end (pairs across blocks)
        full[a, b] = np.arange(a.size)
        full[b, a] = np.arange(a.size)
        self.full = full.ravel()                  # svec position of every flat entry
        self._scaled, self._flat = np.zeros(a.size + 1), np.empty(r * r)
        self.groups = None if column_blocks is None else self._groups(column_blocks)

    def _groups(self, column_blocks: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                               np.ndarray]]:
        """The blocks of S stacked by their order k, for batched numpy calls (one per distinct k, not one per
        block): (columns (nb, k), local pairs la, lb, their svec positions (nb, pairs), weights (pairs,))."""
        by_size: dict[int, list[np.ndarray]] = {}
        for block in np.unique(column_blocks):
            on = np.flatnonzero(column_blocks == block)
            by_size.setdefault(on.size, []).append(on)
        groups = []
        for k, members in sorted(by_size.items()):
            cols = np.array(members)
            la, lb = np.triu_indices(k)
            groups.append((cols, la, lb, self.full[cols[:, la] * self.r + cols[:, lb]],
                           np.where(la == lb, 1.0, math.sqrt(2.0))))
        return groups

    def stack(self, x: np.ndarray) -> list[np.ndarray]:
        """S's blocks from its coordinates x, stacked per order: [(nb, k, k), ...] (batched over a leading axis
        of x too, if it has one)."""
        out = []
        for cols, la, lb, pos, weight in self.groups:
            half = x[..., pos] / weight
            mats = np.zeros(x.shape[:-1] + (cols.shape[0], cols.shape[1], cols.shape[1]))
            mats[..., la, lb] = half
            mats[..., lb, la] = half
            out.append(mats)
        return out

    def unstack(self, mats: list[np.ndarray], out: np.ndarray) -> np.ndarray:
        """`stack`'s inverse: the coordinates of the stacked blocks, written into out (..., size)."""
        for (cols, la, lb, pos, weight), m in zip(self.groups, mats):
            out[..., pos] = m[..., la, lb] * weight
        return out

    def blocks_of(self, s: np.ndarray) -> list[np.ndarray]:
        """The stacked blocks of a full r x r block-diagonal matrix."""
        return [s[cols[:, :, None], cols[:, None, :]] for cols, *_ in self.groups]

    def from_blocks(self, mats: list[np.ndarray]) -> np.ndarray:
        """`blocks_of`'s inverse: the full r x r block-diagonal matrix of stacked blocks."""
        out = np.zeros((self.r, self.r))
        for (cols, *_), m in zip(self.groups, mats):
            out[cols[:, :, None], cols[:, None, :]] = m
        return out

    def smat(self, x: np.ndarray) -> np.ndarray:
        np.multiply(x, self.inv_weight, out=self._scaled[:self.size])
        return np.take(self._scaled, self.full, out=self._flat).reshape(self.r, self.r)

    def ranked_eigh(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Eigenpairs of S and each one's share of its block's largest eigenvalue, ascending by that share. Where S
        is block-diagonal the pairs come block by block (each vector in one block: a whole-matrix eigh mixes blocks
        that share an eigenvalue), and the share is per block: X*'s blocks differ in scale (truss2), and a face
        or a rank cut by the largest eigenvalue of all drops whole blocks."""
        if self.blocks is None:
            values, vectors = np.linalg.eigh(s)
            return values, vectors, values / max(float(values[-1]), 1e-300)
        values, vectors, shares = [], [], []
        for block in np.unique(self.blocks):
            on = np.flatnonzero(self.blocks == block)
            w, v = np.linalg.eigh(s[np.ix_(on, on)])
            full = np.zeros((self.r, on.size))
            full[on] = v
            values.append(w), vectors.append(full), shares.append(w / max(float(w[-1]), 1e-300))
        values, vectors, shares = np.concatenate(values), np.concatenate(vectors, axis=1), np.concatenate(shares)
        order = np.argsort(shares, kind="stable")
        return values[order], vectors[:, order], shares[order]

    def svec(self, s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = np.take(s.ravel(), self.tri, out=out)
        out *= self.weight
        return out


def largest_eigenvalue(mat: np.ndarray, rel_tol: float = 1e-3, max_steps: int = 40) -> float:
    """An upper estimate of lambda_max of a symmetric PSD matrix: the top Ritz value of a Lanczos run (full
    reorthogonalisation) plus its residual norm, stopped once that residual is rel_tol of the value. FISTA
    needs only this (its step is 1 / L), and a full eigvalsh of the subproblem's Gram matrix (m ~ 350 on
    G22) cost more than the FISTA iterations it serves. Small matrices take the exact eigvalsh."""
    m = mat.shape[0]
    if m <= 64:
        return float(np.linalg.eigvalsh(mat)[-1])
    basis = np.empty((max_steps + 1, m))
    # A fixed start (reproducible runs); the perturbation keeps it off any eigenvector orthogonal to ones.
    start = 1.0 + 0.1 * np.sin(np.arange(m))
    basis[0] = start / np.linalg.norm(start)
    alpha, beta = np.zeros(max_steps), np.zeros(max_steps)
    estimate = 0.0
    for k in range(max_steps):
        w = mat @ basis[k]
        alpha[k] = basis[k] @ w
        for _ in range(2):
            w -= basis[:k + 1].T @ (basis[:k + 1] @ w)
        beta[k] = np.linalg.norm(w)
        theta, s = scipy.linalg.eigh_tridiagonal(alpha[:k + 1], beta[:k], select="i", select_range=(k, k))
        residual = beta[k] * abs(s[-1, 0])   # |mat u - theta u| for the Ritz vector u
        estimate = float(theta[0]) + residual
        if residual <= rel_tol * abs(float(theta[0])) or beta[k] == 0.0:
            break
        basis[k + 1] = w / beta[k]
    return estimate


def solve_subproblem_np(gram: np.ndarray, q: np.ndarray, rho: float, gamma: float, r: int, use_eta: bool,
                        x0: np.ndarray, residual_sq: "callable", kappa: float, max_iter: int,
                        check_every: int = 5, interior_fallback: bool = True,
                        factor: np.ndarray | None = None, capped: bool = True,
                        n_lp: int = 0, column_blocks: np.ndarray | None = None,
                        cap_first: bool = False, report: dict | None = None,
                        interior_size_limit: int = INTERIOR_SIZE_LIMIT) -> tuple[np.ndarray, int, float, int]:
    """`solve_subproblem` (same iteration, same stopping rule) on numpy arrays, then, if FISTA did not meet the
    rule in max_iter iterations, the interior-point method (bala_interior.py) from its point. Returns x, FISTA
    iterations, the final gap and the Newton steps (0 without the fallback). `factor` F (hess = rho F^T F)
    makes the Newton steps cheaper where F has fewer rows than columns; `capped` False: the constraints fix
    the trace (bala_interior.solve_subproblem_interior), and the interior-point method runs without the cap's
    barrier, then with it where that misses the rule (`cap_first`: the other way round); `report["capped"]`
    says which one gave x. The last `n_lp` entries of x are the diagonal (LP) blocks' entries, nonnegative and
    inside the same trace cap. `column_blocks`: S block-diagonal (SvecMaps). `interior_size_limit`: the largest
    Newton system the fallback takes on."""
    maps = SvecMaps(r, column_blocks)
    ds = maps.size
    s_part = slice(1, 1 + ds)
    hess = rho * gram
    lipschitz = largest_eigenvalue(hess)
    step = 1.0 / max(lipschitz, 1e-300)

    # Each FISTA iteration is ~20 small numpy calls around one r x r eigendecomposition: buffers reused by
    # SvecMaps, LAPACK's dsyevd without numpy.linalg's wrapper, and the positive eigenvalues found as a suffix
    # of the ascending projected ones took it from 174 to ~160 us (replayed G1 subproblems), same iterates.
    values = np.empty(r + 1 + n_lp)

    def eigh(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lam, vec, info = scipy.linalg.lapack.dsyevd(mat)
        return (lam, vec) if info == 0 else np.linalg.eigh(mat)

    def project(x: np.ndarray) -> np.ndarray:
        lam, vec = eigh(maps.smat(x[s_part]))
        out = np.empty_like(x)
        if use_eta:
            values[0], values[1:1 + r], values[1 + r:] = x[0], lam, x[1 + ds:]
            projected = capped_simplex_projection_np(values, gamma)
            out[0], lam, out[1 + ds:] = projected[0], projected[1:1 + r], projected[1 + r:]
        elif n_lp:
            values[:r], values[r:r + n_lp] = lam, x[1 + ds:]
            projected = capped_simplex_projection_np(values[:r + n_lp], gamma)
            out[0], lam, out[1 + ds:] = 0.0, projected[:r], projected[r:]
        else:
            out[0], lam = 0.0, capped_simplex_projection_np(lam, gamma)
        first = np.searchsorted(lam, 0.0, side="right")   # a shift and a clip keep lam ascending
        v = vec[:, first:]
        maps.svec((v * lam[first:]) @ v.T, out=out[s_part])
        return out

    if maps.groups is not None:   # S block-diagonal: batched eighs of its blocks, not one of order r
        def project(x: np.ndarray) -> np.ndarray:
            pairs = [np.linalg.eigh(m) for m in maps.stack(x[s_part])]
            lam = np.concatenate([w.ravel() for w, _ in pairs])
            out = np.empty_like(x)
            head = [x[0]] if use_eta else []
            projected = capped_simplex_projection_np(np.concatenate([head, lam, x[1 + ds:]]), gamma)
            out[0] = projected[0] if use_eta else 0.0
            lam, out[1 + ds:] = projected[len(head):len(head) + r], projected[len(head) + r:]
            mats, at = [], 0
            for w, v in pairs:
                part = lam[at:at + w.size].reshape(w.shape)
                at += w.size
                mats.append(np.matmul(v * part[:, None, :], np.swapaxes(v, 1, 2)))
            maps.unstack(mats, out[s_part])
            return out

    def smallest_of_s(grad_s: np.ndarray) -> float:
        if maps.groups is None:
            return float(np.linalg.eigvalsh(maps.smat(grad_s))[0])
        return min(float(np.linalg.eigvalsh(m).min()) for m in maps.stack(grad_s))

    def fw_gap(x: np.ndarray, grad: np.ndarray) -> float:
        lam_min = smallest_of_s(grad[s_part])
        lowest = min(0.0, lam_min, float(grad[0]) if use_eta else 0.0,
                     float(grad[1 + ds:].min()) if n_lp else 0.0)
        return float(grad @ x) - gamma * lowest

    x, iters, gap = fista(project, lambda x: hess @ x - q, fw_gap, residual_sq, x0, step, rho, kappa, max_iter,
                          check_every)
    rows = factor.shape[0] if factor is not None else hess.shape[0]
    system = min(rows + 1, hess.shape[0])   # the order of the interior-point method's Newton system
    if gap <= kappa ** 2 * 0.5 * rho * residual_sq(x) or not interior_fallback or system > interior_size_limit:
        return x, iters, gap, 0
    # FISTA's rate is that of H's conditioning: past its budget the interior-point method finishes the job in
    # a number of Newton steps that does not depend on it.
    from alm_bench.conic.solvers.bala_interior import solve_subproblem_interior

    # Without the cap's barrier the minimiser can lie far outside eta + tr S <= gamma while the penalty is still
    # loose (qap5 at rho = 241: trace ~50 scaled into 6, a Frank-Wolfe gap of 7.6e4 for a rule of 2.4e4, and 340
    # null steps); with the barrier the same subproblem met the rule (gap 0.43) in 26 steps. With it, theta's
    # Newton systems lost their precision (solve_subproblem_interior): so one, then the other if needed.
    start, best, newton = x, None, 0
    for with_cap in [True] if capped else ([True, False] if cap_first else [False, True]):
        x, steps, gap = solve_subproblem_interior(hess, q, rho, gamma, maps, use_eta, start, residual_sq, kappa,
                                                  fw_gap, factor, with_cap, n_lp=n_lp)
        newton += steps
        if best is None or gap < best[1]:
            best = (x, gap, with_cap)
        if gap <= kappa ** 2 * 0.5 * rho * residual_sq(x):
            break
    x, gap, with_cap = best
    if report is not None:
        report["capped"] = with_cap
    return x, iters, gap, newton


def diagonal_constraint_matrix(basis: np.ndarray, agg_a: np.ndarray) -> np.ndarray:
    """[A(W), svec-ordered diag(p_a p_b^T) times the svec weights] for A = diag, as the transpose of a
    row-major (1 + m) x n array: each block of rows p_a * p_{a..r} is then one contiguous product (4.5x
    faster than writing column blocks of an n x (1 + m) array on G22), and out @ out.T is numpy's syrk."""
    n, r = basis.shape
    rows = np.ascontiguousarray(basis.T)
    out = np.empty((1 + r * (r + 1) // 2, n))
    out[0] = agg_a
    col, root2 = 1, math.sqrt(2.0)
    for a in range(r):
        width = r - a
        block = out[col:col + width]
        np.multiply(rows[a], rows[a:], out=block)
        block[1:] *= root2
        col += width
    return out.T
