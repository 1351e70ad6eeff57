"""Certified dual bounds for SDPs whose constraints give no trace bound (conic/trace.py found no multiplier e
with sum_k e_k A_k >= I: the feasible set is unbounded, as in the truss and arch problems).

Without such a bound, lambda_min(C - A^*(y)) < 0 proves nothing about min <C, X>: only an exactly dual-feasible
point does (weak duality: <C, X> - <b, y> = <C - A^*(y), X> >= 0). `repair` moves a nearly feasible y to one.

Along the dual central path (where the problem is small enough for Newton's method on the dual barrier,
conic/dual_barrier.py): from y it follows points y_mu with Z(y_mu) > 0 towards mu -> 0, and on each segment
from y to y_mu takes the point nearest y whose slack is proven PSD (bisection; Z is affine in y, so the
feasible part of the segment is an interval ending at y_mu). That point's bound loses about |lambda_min(Z(y))|
times n ||X*|| (a central y_mu has lambda_min ~ mu / ||X||, <b, y_mu> ~ opt - n mu), not the 1e-3 of a face
that cannot be lifted: truss3 at BALA's y (15 of 31 eigenvalues within 1e-9 of 0) lost 3e-3 by the face
lift, 1e-9 by the path. Every point used is proven feasible by a Cholesky per block with margins for the
round-off of forming Z and of the factorisation (`_certified_psd`); the barrier's own arithmetic is trusted
for nothing.

Elsewhere (larger problems) by a face lift: with U the eigenvectors of the slack Z = C - A^*(y) for its
smallest eigenvalues (the face where Z is singular at the optimum, of dimension rank X*), the least-norm
direction d with U^T A^*(d) U = -I lifts Z on that face, Z(y + t d) = Z - t A^*(d), while moving the rest of
the spectrum by O(t); the smallest t whose certified lambda_min is >= 0 gives an exactly feasible y + t d and
the bound <b, y + t d>. It works where the map d -> U^T A^*(d) U is onto (primal nondegeneracy, which
interior-point theory also assumes) and the face is not much larger than rank X*.

A strictly feasible point y0 (lambda_0 = lambda_min(Z(y0)) > 0) found either way certifies every later y at
no cost: y_hat = (y + mu y0) / (1 + mu) with mu = max(0, -lambda) / lambda_0 has Z(y_hat) >= 0, so
<b, y_hat> is a lower bound; `DualCertifier` keeps the best such y0. A bound reported for y is never above
<b, y>: the certificate repairs y, it does not solve the dual in its place.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from alm_bench.conic.dual_barrier import DualBarrier, central_points
from alm_bench.conic.eigen import DENSE_LIMIT, block_eigenpairs, certified_lambda_min
from alm_bench.conic.problems import psd_block_ranges

FACE_LIMIT = 1e-2                       # the face's eigenvalues are below this times the slack's scale
MAX_FACES = 12                          # face dimensions tried
MAX_STEPS = 30                          # doublings of t before a face is given up
INTERIOR_STEPS = 12                     # doublings past feasibility looking for a strictly feasible y0
SEGMENT_STEPS = 16                      # bisections of log s on a segment: s to 0.06%
SEGMENT_FLOOR = 1e-16                   # the smallest s tried
STALL_SHARE = 0.01                      # a central point that gains less than this share of the loss left ...
STALL_STAGES = 2                        # ... this many times in a row ends the path
MU_RAISE = 100.0                        # mu raised by this where the path's first point failed the proof ...
MU_RAISES = 3                           # ... at most this many times


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


def repair(problem, y: torch.Tensor, barrier: DualBarrier | None = None
           ) -> tuple[torch.Tensor, tuple[torch.Tensor, float]] | None:
    """(an exactly dual-feasible point near y, and the most interior point met on the way with its certified
    lambda_min > 0 or >= 0), or None (order above the dense limit, or no feasible point found). `barrier`: the
    problem's DualBarrier if the caller keeps one."""
    if problem.n > DENSE_LIMIT:
        return None
    y = y.detach().to(torch.device("cpu"), torch.float64)
    problem.to(torch.device("cpu"))
    if barrier is None and DualBarrier.affordable(problem):
        barrier = DualBarrier(problem)
    if barrier is not None:
        point = y.numpy()
        level = _certified_level(barrier, point)
        if level is not None:
            return y, (y, level)
        found = _along_central_path(barrier, point)
        if found is not None:
            feasible, (inner, lam) = found
            return torch.from_numpy(feasible), (torch.from_numpy(inner), lam)
    return _lift_face(problem, y)


def _certified_psd(barrier: DualBarrier, y: np.ndarray, level: float) -> bool:
    """Z(y) >= level I, proven: per PSD block a Cholesky of the computed block less (level + margins) I, per LP
    entry the entry less the margins. Forming Z(y) errs by at most terms u (|C| + sum_k |y_k A_k|) an entry
    (u the unit round-off), whose Gershgorin sum over a block bounds the error's norm; a Cholesky that
    completes is exact for a matrix within 10 r u |block| of the one factored (Demmel; as
    eigen.lambda_min_at_least). Per block, so that a block of large entries (control1's first, 1e5) does not
    widen the margin of the others."""
    u = np.finfo(np.float64).eps
    stacks, lp = barrier.slack_parts(y)
    magnitudes, lp_magnitude, terms = barrier.magnitude_parts(y)
    for z, magnitude in zip(stacks, magnitudes):
        r = z.shape[-1]
        formed = 1.01 * terms * u * magnitude.sum(axis=-1).max(axis=-1)
        factored = 10 * r * u * (np.abs(z).sum(axis=-1).max(axis=-1) + abs(level) + formed)
        try:
            np.linalg.cholesky(z - (level + formed + factored)[:, None, None] * np.eye(r))
        except np.linalg.LinAlgError:
            return False
    return not lp.size or bool((lp - 1.01 * terms * u * lp_magnitude >= level * (1 + 2 * u)).all())


def _certified_level(barrier: DualBarrier, y: np.ndarray) -> float | None:
    """A proven lower bound >= 0 on lambda_min(Z(y)): half the LAPACK estimate if that is proven, else 0 if
    that is, else None."""
    estimate = barrier.lambda_min(y)
    for level in ((0.5 * estimate,) if estimate > 0 else ()) + (0.0,):
        if _certified_psd(barrier, y, level):
            return level
    return None


def _segment_point(barrier: DualBarrier, y: np.ndarray, interior: np.ndarray) -> np.ndarray:
    """The point y + s (interior - y) with the smallest s (to SEGMENT_STEPS bisections of log s between
    SEGMENT_FLOOR and 1) whose slack is proven PSD; `interior` itself (s = 1) is proven so."""
    direction = interior - y
    low, high, feasible = SEGMENT_FLOOR, 1.0, interior
    for _ in range(SEGMENT_STEPS):
        s = math.sqrt(low * high)
        point = y + s * direction
        if _certified_psd(barrier, point, 0.0):
            high, feasible = s, point
        else:
            low = s
    return feasible


def _along_central_path(barrier: DualBarrier, y: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, float]] | None:
    """(the best proven-feasible point on the segments from y to points of the dual central path, that
    segment's end with its proven lambda_min), or None where no central point could be proven interior. The
    path is left once the bound reaches <b, y> or stops gaining, or where its points no longer pass the proof
    (mu at round-off)."""
    b = barrier.problem.b_np
    by = float(b @ y)
    best, best_bound, stalls = None, -math.inf, 0
    start, mu = y, None
    for _ in range(MU_RAISES + 1):
        first = None
        for point, mu_k in central_points(barrier, start, mu):
            first = first or (point, mu_k)
            level = _certified_level(barrier, point)
            if level is None:
                break
            feasible = _segment_point(barrier, y, point)
            bound = float(b @ feasible)
            if best is not None and bound - best_bound <= STALL_SHARE * (by - best_bound):
                stalls += 1
            else:
                stalls = 0
            if bound > best_bound:
                best, best_bound = (feasible, (point, level)), bound
            if best_bound >= by or stalls >= STALL_STAGES:
                break
        if best is not None or first is None:
            return best
        # The first centre was too near the boundary for the proof's margins (control1: lambda_min 2.6e-10
        # against margins of 2e-8 in its block of entries ~1e5): go back up the path from there.
        start, mu = first[0], MU_RAISE * first[1]
    return best


def _lift_face(problem, y: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, float]] | None:
    """The face lift (module docstring): an exactly feasible y + t d and the most interior point met further
    along d, or None (no face direction lifts the slack)."""
    slack = problem.slack(y)
    lam = certified_lambda_min(slack)
    if lam >= 0:
        return y, (y, lam)
    # Per block kind: the PSD blocks' eigenpairs (the LP coordinates moved above the spectrum), and the LP
    # blocks' diagonal, where the face is the coordinates with a small entry and lifting one needs only
    # (A^*(d))_ii = -1 (arch0: 76 of them, far beyond any PSD face the constraints could lift).
    values, vectors, blocks = block_eigenpairs(slack.scipy().toarray(), psd_block_ranges(problem.block_sizes))
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
        self.barrier = DualBarrier(problem) if problem.n <= DENSE_LIMIT and DualBarrier.affordable(problem) else None

    def bound(self, y: torch.Tensor, lambda_min: float) -> float:
        """A certified lower bound from y, lambda_min a certified lower bound on lambda_min(C - A^*(y)), at
        most <b, y>."""
        b = self.problem.b
        by = float(b @ y)
        if lambda_min >= 0:
            return by
        if self.interior is None:
            return -math.inf
        return min(by, self._combined(y, lambda_min, self.interior))

    def _combined(self, y: torch.Tensor, lambda_min: float, interior: tuple[torch.Tensor, float]) -> float:
        """<b, y_hat>, y_hat = (y + mu y0) / (1 + mu) with mu = -lambda_min / lambda_0 (module docstring)."""
        y0, lam0 = interior
        mu = -lambda_min / lam0
        b = self.problem.b
        return (float(b @ y) + mu * float(b @ y0.to(y.device))) / (1 + mu)

    def certify(self, y: torch.Tensor) -> float:
        """The best certified bound at y (its repair), at most <b, y>; the interior point met on the way is
        kept where it certifies y better than the one kept so far would (by the combination, at y's
        LAPACK lambda_min: a measure of use, not a bound)."""
        found = repair(self.problem, y, self.barrier)
        if found is None:
            return -math.inf
        point, (inner, lam) = found
        if lam > 0:
            self._keep(y, (inner, lam))
        b = self.problem.b.cpu()
        return min(float(b @ y.cpu()), float(b @ point))

    def _keep(self, y: torch.Tensor, interior: tuple[torch.Tensor, float]) -> None:
        if self.interior is None:
            self.interior = interior
            return
        y = y.detach().cpu().to(torch.float64)
        lam = min(float(np.linalg.eigvalsh(self.problem.slack(y).scipy().toarray())[0]), 0.0)
        if self._combined(y, lam, interior) >= self._combined(y, lam, self.interior):
            self.interior = interior
