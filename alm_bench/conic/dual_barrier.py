"""Strictly feasible dual points near a given y, by Newton's method on the dual log-det barrier

    phi(y) = <b, y> / mu + log det(Z(y) + sigma I),        Z(y) = C - A^*(y)  (block diagonal),

followed along mu -> 0 (the dual central path: Z(y_mu) is positive definite and <b, y_mu> is within n mu of
the optimum). An infeasible start (lambda_min(Z(y)) < 0) is met by the shift sigma: the start is interior to
Z + sigma I >= 0, and after each centering sigma is lowered below the centre's -lambda_min, until the centre
is strictly feasible and sigma = 0. This is the classical dual barrier method (Nesterov & Nemirovski; the
Schur complement H_kl = tr(W A_k W A_l), W = (Z + sigma I)^{-1}, of every dual interior-point code), started
next to the optimum; certificate.py certifies what it yields (nothing here is trusted without that).

H is computed block by block: with W = Q Q^T (Q = L^{-T}, L L^T = Z + sigma I), G_k = Q^T A_k Q and
H_kl = <G_k, G_l>, tr G_k = <A_k, W>. Blocks of one size are stacked, so that a truss with 151 blocks costs a
few array operations, not a Python loop; diagonal (LP) blocks add A_lp diag(1/z^2) A_lp^T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp

MAX_GRAM = 2 ** 24          # m * sum of squared PSD block sizes (doubles of the G_k): 128 MB
MAX_M = 2000                # Newton's system is m x m (m^3 / 3 flops a step)
MAX_FLOPS = 4e9             # a Newton step's products (about 0.1-0.2 s on one core)
CENTERED = 0.2              # Newton decrement at which a point counts as centred
MU_FACTOR = 0.1             # mu multiplied by this after each centring
SIGMA_KEEP = 0.1            # sigma lowered to -lambda_min + this (sigma + lambda_min): Z + sigma I stays > 0
MAX_NEWTON = 150            # Newton steps in all, per call


@dataclass
class _SizeGroup:
    """The PSD blocks of one size r: C on them (nb, r, r), and A^* on them as a sparse map."""
    r: int
    c: np.ndarray             # (nb * r * r,) C on the blocks, flattened
    entry_k: np.ndarray       # the constraint of each entry of the A_k on these blocks
    entry_flat: np.ndarray    # where it lands in the flattened (nb, r, r) stack
    entry_v: np.ndarray
    stacked: sp.csr_matrix    # (m nb r, nb r): row (k, block, i), column (block, j) holds A_k[block; i, j]


class DualBarrier:
    """The barrier's structure for one problem (built once): its PSD blocks grouped by size, its LP part."""

    def __init__(self, problem) -> None:
        self.problem = problem
        self.m = problem.m
        sizes = np.asarray(problem.block_sizes)
        offsets = np.concatenate([[0], np.cumsum(np.abs(sizes))])[:-1]
        block_of = np.repeat(np.arange(sizes.size), np.abs(sizes))
        c_coo = problem.c_op.matrix.tocoo()
        k, i, j, v = problem._k, problem._i, problem._j, problem._v
        self.groups = []
        for r in np.unique(sizes[sizes > 0]):
            r = int(r)
            members = np.flatnonzero(sizes == r)
            slot = np.full(sizes.size, -1)
            slot[members] = np.arange(members.size)
            nb = members.size

            def flat(rows, cols):
                """Index in the (nb, r, r) stack of entries (rows, cols) in these blocks, -1 elsewhere."""
                s = slot[block_of[rows]]
                where = s * r * r + (rows - offsets[block_of[rows]]) * r + (cols - offsets[block_of[rows]])
                return np.where(s >= 0, where, -1)

            at_c = flat(c_coo.row, c_coo.col)
            c = np.bincount(at_c[at_c >= 0], weights=c_coo.data[at_c >= 0], minlength=nb * r * r)
            at = flat(i, j)
            on = at >= 0
            local_i, local_j = (i[on] - offsets[block_of[i[on]]]), (j[on] - offsets[block_of[j[on]]])
            block = slot[block_of[i[on]]]
            stacked = sp.csr_matrix((v[on], (k[on] * nb * r + block * r + local_i, block * r + local_j)),
                                    shape=(self.m * nb * r, nb * r))
            self.groups.append(_SizeGroup(r, c, k[on], at[on], v[on], stacked))
        self.lp_index = problem.lp_index
        if self.lp_index.size:
            a_lp, c_lp = problem.lp_columns()
            self.a_lp, self.c_lp = a_lp.cpu().numpy(), c_lp.cpu().numpy()
        self.order = int(np.abs(sizes).sum())

    @staticmethod
    def affordable(problem) -> bool:
        """Whether the G_k (m sum r_b^2 doubles), Newton's m x m system and a step's products (m sum r_b^3 for
        the G_k, m^2 sum r_b^2 for H) fit the limits: arch0 1.5e9 flops a step (60 ms on one thread), truss8
        3e9; one block of order 4000 would take 10^12."""
        m, sizes = problem.m, [int(s) for s in problem.block_sizes if s > 0]
        gram = m * sum(r ** 2 for r in sizes)
        flops = m * sum(r ** 3 for r in sizes) + m * gram
        return m <= MAX_M and gram <= MAX_GRAM and flops <= MAX_FLOPS

    def slack_parts(self, y: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Z(y) as (per size group an (nb, r, r) stack, the LP diagonal)."""
        stacks = []
        for g in self.groups:
            z = g.c - np.bincount(g.entry_flat, weights=g.entry_v * y[g.entry_k], minlength=g.c.size)
            stacks.append(z.reshape(-1, g.r, g.r))
        lp = self.c_lp - y @ self.a_lp if self.lp_index.size else np.zeros(0)
        return stacks, lp

    def magnitude_parts(self, y: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, int]:
        """|C| + sum_k |y_k A_k| in the layout of slack_parts, and the most terms any entry of Z sums: what
        bounds the round-off of forming Z(y) (certificate.py)."""
        stacks, terms = [], 1
        for g in self.groups:
            z = np.abs(g.c) + np.bincount(g.entry_flat, weights=np.abs(g.entry_v * y[g.entry_k]), minlength=g.c.size)
            stacks.append(z.reshape(-1, g.r, g.r))
            if g.entry_flat.size:
                terms = max(terms, 1 + int(np.bincount(g.entry_flat).max()))
        lp = np.abs(self.c_lp) + np.abs(y) @ np.abs(self.a_lp) if self.lp_index.size else np.zeros(0)
        if self.lp_index.size:
            terms = max(terms, 1 + int((self.a_lp != 0).sum(axis=0).max()))
        return stacks, lp, terms

    def lambda_min(self, y: np.ndarray) -> float:
        """The smallest eigenvalue of Z(y) over all blocks (LAPACK; for steering, not for certifying)."""
        stacks, lp = self.slack_parts(y)
        values = [float(np.linalg.eigvalsh(z)[:, 0].min()) for z in stacks] + ([float(lp.min())] if lp.size else [])
        return min(values)

    def _inverse_factors(self, y: np.ndarray, sigma: float) -> tuple[list[np.ndarray], np.ndarray] | None:
        """Q per group ((nb, r, r), Q Q^T = (Z + sigma I)^{-1} block by block) and 1 / (z + sigma) on the LP
        part; None where Z(y) + sigma I is not positive definite."""
        stacks, lp = self.slack_parts(y)
        factors = []
        for z in stacks:
            z = z + sigma * np.eye(z.shape[-1])
            try:
                chol = np.linalg.cholesky(z)
            except np.linalg.LinAlgError:
                return None
            eye = np.broadcast_to(np.eye(z.shape[-1]), z.shape)
            factors.append(np.swapaxes(np.linalg.solve(chol, eye), -1, -2))   # L^{-T}
        lp = lp + sigma
        if lp.size and float(lp.min()) <= 0:
            return None
        return factors, 1.0 / lp

    def schur(self, y: np.ndarray, sigma: float):
        """(H, A(W), the G_k per size group, 1 / (z + sigma) on the LP part) at y: H_kl = tr(W A_k W A_l),
        A(W)_k = <A_k, W>, W = (Z(y) + sigma I)^{-1}; None outside the domain."""
        found = self._inverse_factors(y, sigma)
        if found is None:
            return None
        factors, inv_lp = found
        hessian, a_w, grams = np.zeros((self.m, self.m)), np.zeros(self.m), []
        for g, q in zip(self.groups, factors):
            nb = q.shape[0]
            aq = (g.stacked @ q.reshape(nb * g.r, g.r)).reshape(self.m, nb, g.r, g.r)   # (A_k Q) per block
            gram = np.matmul(np.swapaxes(q, -1, -2)[None], aq)                        # Q^T A_k Q
            flat = gram.reshape(self.m, -1)
            hessian += flat @ flat.T
            a_w += np.trace(gram, axis1=-2, axis2=-1).sum(axis=1)
            grams.append(gram)
        if self.lp_index.size:
            scaled = self.a_lp * inv_lp
            hessian += scaled @ scaled.T
            a_w += self.a_lp @ inv_lp
        return hessian, a_w, grams, inv_lp

    def newton(self, y: np.ndarray, mu: float, sigma: float) -> tuple[np.ndarray, float, float] | None:
        """(the Newton step d of phi at y, its decrement sqrt(g^T H^{-1} g), the step length along d that
        maximises phi), or None outside the domain. Along d, Z + sigma I = L (I - t Q^T A^*(d) Q) L^T, so phi
        changes by t <b, d> / mu + sum_i log(1 - t rate_i) over the eigenvalues rate_i of Q^T A^*(d) Q (and
        of the LP part): an exact line search costs one small eigendecomposition per block. Damped Newton's
        1 / (1 + decrement) took ~20 steps after each cut of mu on arch0; this takes a few."""
        found = self.schur(y, sigma)
        if found is None:
            return None
        hessian, a_w, grams, inv_lp = found
        step, decrement = _solve_psd(hessian, self.problem.b_np / mu - a_w)
        rates = [np.linalg.eigvalsh(np.tensordot(step, gram, axes=(0, 0))).ravel() for gram in grams]
        if self.lp_index.size:
            rates.append((step @ self.a_lp) * inv_lp)
        return step, decrement, _line_search(float(self.problem.b_np @ step) / mu, np.concatenate(rates))

    def fitted_mu(self, y: np.ndarray, sigma: float) -> float:
        """The mu for which y is nearest to central (b / mu - A(W) smallest in the H^{-1} norm): mu W is then
        the best primal estimate at y, and the path starts where y already is instead of far off."""
        found = self.schur(y, sigma)
        if found is None:
            return math.nan
        u, _ = _solve_psd(found[0], self.problem.b_np)
        a_w = found[1]
        across = float(a_w @ u)
        return float(self.problem.b_np @ u) / across if across > 0 else math.nan


def _line_search(slope: float, rates: np.ndarray) -> float:
    """argmax over t of t slope + sum log(1 - t rates) (concave; its derivative falls from decrement^2 > 0),
    by bisection on the derivative, inside the domain t < 1 / max(rates)."""
    derivative = lambda t: slope - float((rates / (1.0 - t * rates)).sum())  # noqa: E731
    top = float(rates.max()) if rates.size else 0.0
    high = 1.0 / top if top > 0 else 1.0
    if top <= 0:   # no boundary ahead: grow until phi turns (a dual that is bounded turns somewhere)
        while derivative(high) > 0 and high < 1e30:
            high *= 2.0
    low = 0.0
    for _ in range(60):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if derivative(middle) > 0:
            low = middle
        else:
            high = middle
    return low


def _solve_psd(hessian: np.ndarray, grad: np.ndarray) -> tuple[np.ndarray, float]:
    """(H^{-1} g, sqrt(g^T H^{-1} g)) by a Cholesky of H scaled to a unit diagonal: near a singular slack H's
    entries span many orders (1 / lambda^2 on the near-null face), which the scaling takes out; a least-squares
    solve where H is singular (constraints dependent on the blocks' span)."""
    d = np.sqrt(np.maximum(np.diagonal(hessian), 1e-300))
    scaled = hessian / d[:, None] / d[None, :]
    try:
        step = scipy.linalg.cho_solve(scipy.linalg.cho_factor(scaled), grad / d) / d
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        step = np.linalg.lstsq(scaled, grad / d, rcond=None)[0] / d
    return step, math.sqrt(max(float(grad @ step), 0.0))


def central_points(barrier: DualBarrier, y: np.ndarray, mu: float | None = None, max_newton: int = MAX_NEWTON):
    """Points on the dual central path near y, as (point, mu), from `mu` (None: the mu that fits y best)
    multiplied by MU_FACTOR after each; each has Z(point) > 0 by a floating-point Cholesky (certify before
    use). Ends when Newton's steps run out or a step leaves the domain in floating point (mu at round-off)."""
    problem = barrier.problem
    y = np.array(y, dtype=np.float64)
    lam = barrier.lambda_min(y)
    # The shift makes y interior (lambda_min(Z + sigma I) = |lambda| at y) without moving it.
    sigma = 0.0 if lam > 0 else max(-2.0 * lam, 1e-14 * _scale(problem))
    mu = barrier.fitted_mu(y, sigma) if mu is None else mu
    if not (math.isfinite(mu) and mu > 0):   # b points nowhere near A(W): start from the data's scale
        mu = 1e-6 * (1.0 + abs(float(problem.b_np @ y))) / barrier.order
    steps = 0
    while steps < max_newton:
        while True:   # centre: Newton's steps with an exact line search
            found = barrier.newton(y, mu, sigma)
            if found is None or steps >= max_newton:
                return
            step, decrement, alpha = found
            steps += 1
            while barrier._inverse_factors(y + alpha * step, sigma) is None:   # only round-off can do this
                alpha *= 0.5
                if alpha < 1e-8:
                    return
            y = y + alpha * step
            if decrement <= CENTERED:
                break
        if sigma > 0:   # lower the shift below the centre's -lambda_min, or drop it once the centre is interior
            lam = barrier.lambda_min(y)
            sigma = 0.0 if lam > 0 else -lam + SIGMA_KEEP * (sigma + lam)
            continue
        yield y.copy(), mu
        mu *= MU_FACTOR


def _scale(problem) -> float:
    return max(float(abs(problem.c_op.matrix).max()) if problem.c_op.matrix.nnz else 0.0, 1.0)
