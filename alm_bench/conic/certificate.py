"""Certified dual bounds for SDPs whose constraints give no trace bound (conic/trace.py found no multiplier e
with sum_k e_k A_k >= I: the feasible set is unbounded, as in the truss and arch problems).

Without such a bound, lambda_min(C - A^*(y)) < 0 proves nothing about min <C, X>: only an exactly dual-feasible
point does (weak duality: <C, X> - <b, y> = <C - A^*(y), X> >= 0). `repair` moves a nearly feasible y to one:
with U the eigenvectors of the slack Z = C - A^*(y) for its smallest eigenvalues (the face where Z is
singular at the optimum, of dimension rank X*), the least-norm direction d with U^T A^*(d) U = -I lifts Z on
that face, Z(y + t d) = Z - t A^*(d), while moving the rest of the spectrum by O(t); the smallest t whose
certified lambda_min is >= 0 gives an exactly feasible y + t d and the bound <b, y + t d>. It works where
the map d -> U^T A^*(d) U is onto (primal nondegeneracy, which interior-point theory also assumes).

A strictly feasible point y0 (lambda_0 = lambda_min(Z(y0)) > 0) found this way certifies every later y at no
cost: y_hat = (y + mu y0) / (1 + mu) with mu = max(0, -lambda) / lambda_0 has Z(y_hat) >= 0 (Z is affine in
y), so <b, y_hat> is a lower bound; `DualCertifier` keeps the best such y0.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch

from alm_bench.conic.eigen import DENSE_LIMIT, certified_lambda_min

FACE_LIMIT = 1e-2                       # the face's eigenvalues are below this times the slack's scale
MAX_FACES = 12                          # face dimensions tried
MAX_STEPS = 30                          # doublings of t before a face is given up
INTERIOR_STEPS = 12                     # doublings past feasibility looking for a strictly feasible y0


def _svec_rows(gram: np.ndarray) -> np.ndarray:
    """(r(r+1)/2, m): row (a, b), a <= b, holds p_a^T A_k p_b (times sqrt 2 off the diagonal)."""
    m, r, _ = gram.shape
    a, b = np.triu_indices(r)
    weight = np.where(a == b, 1.0, math.sqrt(2.0))
    return (gram[:, a, b] * weight).T


def _face_sizes(values: np.ndarray, blocks: np.ndarray, scale: float, m: int) -> list[int]:
    """Candidate dimensions of the face, smallest first: every r whose r-th eigenvalue is below FACE_LIMIT
    times the scale and for which U^T A^*(d) U = -I can have a solution: its equations (r_b (r_b + 1) / 2 for
    the r_b of the first r eigenvectors in PSD block b; pairs from two blocks hold 0 = 0 for block-diagonal
    A_k) number at most m. At most MAX_FACES of them. A face too small leaves eigenvalues just above it to be
    pushed below 0 as t grows (truss1 pushed off its optimum by 1e-5: r = 1 fails, r = 3 works); counting
    pairs across blocks refused truss4's face (rank 9 over 7 blocks: 45 equations counted, 11 real, m = 12)."""
    small = int((values <= FACE_LIMIT * scale).sum())
    sizes = []
    for r in range(1, small + 1):
        per_block = np.bincount(blocks[:r])
        if int((per_block * (per_block + 1) // 2).sum()) <= m:
            sizes.append(r)
    return sizes[:MAX_FACES]


def _block_eigenpairs(matrix: np.ndarray, psd_blocks: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray]:
    """Eigenpairs of a block-diagonal matrix block by block (each vector lives in one block even where two
    blocks share an eigenvalue, as truss4's do), ascending: values, vectors (n x k), the block of each."""
    values, vectors, blocks = [], [], []
    n = matrix.shape[0]
    for b, (lo, hi) in enumerate(psd_blocks):
        w, v = scipy.linalg.eigh(matrix[lo:hi, lo:hi])
        full = np.zeros((n, hi - lo))
        full[lo:hi] = v
        values.append(w), vectors.append(full), blocks.append(np.full(hi - lo, b))
    values, vectors, blocks = np.concatenate(values), np.concatenate(vectors, axis=1), np.concatenate(blocks)
    order = np.argsort(values, kind="stable")
    return values[order], vectors[:, order], blocks[order]


def repair(problem, y: torch.Tensor) -> tuple[torch.Tensor, float, tuple[torch.Tensor, float]] | None:
    """(an exactly dual-feasible point near y, and the most interior point met on the way with its certified
    lambda_min > 0 or >= 0), or None (order above the dense limit, or no face direction lifts the slack)."""
    if problem.n > DENSE_LIMIT:
        return None
    y = y.detach().to(torch.device("cpu"), torch.float64)
    problem.to(torch.device("cpu"))
    slack = problem.slack(y)
    lam = certified_lambda_min(slack)
    if lam >= 0:
        return y, (y, lam)
    # Per block kind: the PSD blocks' eigenpairs (the LP coordinates moved above the spectrum), and the LP
    # blocks' diagonal, where the face is the coordinates with a small entry and lifting one needs only
    # (A^*(d))_ii = -1 (arch0: 76 of them, far beyond any PSD face the constraints could lift).
    offsets = np.concatenate([[0], np.cumsum(np.abs(problem.block_sizes))])
    psd_blocks = [(int(lo), int(lo + size)) for size, lo in zip(problem.block_sizes, offsets) if size > 0]
    values, vectors, blocks = _block_eigenpairs(slack.scipy().toarray(), psd_blocks)
    # The scale as over the PSD slack with the LP coordinates moved above its spectrum (problem.psd_slack).
    moved_lp = slack.gershgorin() + 1.0 if problem.lp_index.size else 0.0
    scale = max(float(np.abs(values).max()), moved_lp, 1e-300)
    lp_rows = np.zeros((0, problem.m))
    if problem.lp_index.size:
        diagonal = slack.scipy().diagonal()[problem.lp_index]
        face_lp = problem.lp_index[diagonal <= FACE_LIMIT * scale]
        a_lp, _ = problem.lp_columns()
        column = np.searchsorted(problem.lp_index, face_lp)
        lp_rows = a_lp.cpu().numpy()[:, column].T
    for r in _face_sizes(values, blocks, scale, problem.m - lp_rows.shape[0]) or [0]:
        u = torch.from_numpy(np.ascontiguousarray(vectors[:, :r]))
        rows = np.concatenate([_svec_rows(problem.constraint_gram(u).numpy()) if r else np.zeros((0, problem.m)),
                               lp_rows])
        if not rows.shape[0]:
            continue
        target = -np.concatenate([_svec_rows(np.eye(r)[None])[:, 0] if r else np.zeros(0),
                                  np.ones(lp_rows.shape[0])])
        d = torch.from_numpy(np.linalg.lstsq(rows, target, rcond=None)[0])
        t = -lam
        for _ in range(MAX_STEPS):
            lam_t = certified_lambda_min(problem.slack(y + t * d))
            if lam_t >= 0:
                feasible, inner = y + t * d, (y + t * d, lam_t)
                for _ in range(INTERIOR_STEPS):   # further along d the slack may grow more positive
                    t *= 2
                    lam_more = certified_lambda_min(problem.slack(y + t * d))
                    if lam_more <= inner[1]:
                        break
                    inner = (y + t * d, lam_more)
                return feasible, inner
            t *= 2
    return None


class DualCertifier:
    """Certified lower bounds on min <C, X> for a problem without a trace certificate: exactly feasible points
    by `repair`, and the convex combination with the best strictly feasible point found so far."""

    def __init__(self, problem) -> None:
        self.problem = problem
        self.interior: tuple[torch.Tensor, float] | None = None   # (y0, lambda_min(Z(y0)) > 0)

    def bound(self, y: torch.Tensor, lambda_min: float) -> float:
        """A certified lower bound from y, lambda_min a certified lower bound on lambda_min(C - A^*(y))."""
        b = self.problem.b
        if lambda_min >= 0:
            return float(b @ y)
        if self.interior is None:
            return -math.inf
        y0, lam0 = self.interior
        mu = -lambda_min / lam0
        return (float(b @ y) + mu * float(b @ y0.to(y.device))) / (1 + mu)

    def certify(self, y: torch.Tensor) -> float:
        """The best certified bound at y (its repair); an interior point met on the way is kept."""
        found = repair(self.problem, y)
        if found is None:
            return -math.inf
        point, (inner, lam) = found
        if lam > 0 and (self.interior is None or lam > self.interior[1]):
            self.interior = (inner, lam)
        return float(self.problem.b.cpu() @ point)
