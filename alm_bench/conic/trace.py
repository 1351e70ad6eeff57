"""What bounds the trace of a feasible X, derived from the constraints alone (no user input).

A multiplier e with E = sum_k e_k A_k >= I (PSD order) gives, for every feasible X (X PSD, A(X) = b),

    tr X = <I, X> <= <E, X> = <e, A(X)> = <e, b> =: T,

so T bounds the trace of every feasible point, optimal ones included; and for any y, the shifted point
y + min(0, lambda_min(C - A^*(y))) e is exactly dual feasible (C - A^*(y) - mu E >= lambda I - lambda I = 0 for
mu = lambda < 0), which makes <b, y> + T min(0, lambda_min) a certified lower bound on min <C, X>.

Two searches, cheapest first: E = I exactly (least squares on the constraint pattern: Max-Cut, gpp, theta,
qpG: then tr X = T on the feasible set), else E - I diagonally dominant (a linear program, HiGHS through
scipy: control problems). A multiplier is accepted only after its Gershgorin bound proves E >= s I with s > 0;
e is then divided by s, so E >= I holds for the e returned up to round-off in the sums. No multiplier exists
when the feasible set is unbounded (some D PSD, D != 0, has A(D) = 0: truss, arch): the certificate then
comes from an exactly feasible dual point (conic/certificate.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

# The diagonal-dominance LP has one variable per constraint and per off-diagonal pattern entry: above this
# many it is skipped (its cost grows faster than the solve it would serve).
LP_LIMIT = 200_000


@dataclass
class TraceCertificate:
    multiplier: np.ndarray   # e, with sum_k e_k A_k >= I
    bound: float             # T = <e, b> >= tr X for every feasible X
    exact: bool              # sum_k e_k A_k = I: then tr X = T on the feasible set


def trace_certificate(pattern: sp.csr_matrix, diagonal: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                      n: int, b: np.ndarray) -> TraceCertificate | None:
    """`pattern` maps a multiplier e (m) to the entries of E = sum_k e_k A_k on the slack pattern (both
    triangles), whose entry t is (rows[t], cols[t]); `diagonal` marks the diagonal entries."""
    exact = _identity_multiplier(pattern, diagonal)
    e = exact if exact is not None else _dominance_multiplier(pattern, diagonal, rows, cols, n, b)
    if e is None:
        return None
    entries = pattern @ e
    lower = _gershgorin_lower(entries, diagonal, rows, n)
    if not lower > 0:
        return None
    e = e / lower
    return TraceCertificate(e, float(b @ e), exact is not None)


def _gershgorin_lower(entries: np.ndarray, diagonal: np.ndarray, rows: np.ndarray, n: int) -> float:
    """min_i (E_ii - sum_{j != i} |E_ij|) <= lambda_min(E)."""
    diag = np.bincount(rows[diagonal], weights=entries[diagonal], minlength=n)
    off = np.bincount(rows[~diagonal], weights=np.abs(entries[~diagonal]), minlength=n)
    return float((diag - off).min())


def _identity_multiplier(pattern: sp.csr_matrix, diagonal: np.ndarray) -> np.ndarray | None:
    """e with sum_k e_k A_k = I, if one exists (to 1e-9 per entry)."""
    target = diagonal.astype(np.float64)
    m = pattern.shape[1]
    e = spla.lsqr(pattern, target, atol=1e-14, btol=1e-14, iter_lim=10 * m + 100)[0]
    snapped = np.round(e * 1e6) / 1e6  # exact multipliers are usually simple numbers (Max-Cut: all ones)
    if np.linalg.norm(pattern @ snapped - target) <= np.linalg.norm(pattern @ e - target):
        e = snapped
    residual = np.linalg.norm(pattern @ e - target)
    return e if residual <= 1e-9 * np.sqrt(max(int(diagonal.sum()), 1)) else None


def _dominance_multiplier(pattern: sp.csr_matrix, diagonal: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                          n: int, b: np.ndarray) -> np.ndarray | None:
    """argmin <b, e> s.t. E - I diagonally dominant (E_ii - 1 >= sum_{j != i} u_ij, u_ij >= |E_ij|): the
    smallest trace bound this sufficient condition for E >= I can give."""
    from scipy.optimize import linprog

    m = pattern.shape[1]
    upper = np.flatnonzero(rows < cols)
    nu = upper.size
    if m + nu > LP_LIMIT:
        return None
    e_diag = pattern[np.flatnonzero(diagonal)]
    diag_rows = rows[diagonal]
    e_off = pattern[upper]
    touch = sp.csr_matrix((np.ones(2 * nu), (np.concatenate([rows[upper], cols[upper]]),
                                             np.tile(np.arange(nu), 2))), shape=(n, nu))
    row_sum = sp.csr_matrix((np.ones(diag_rows.size), (diag_rows, np.arange(diag_rows.size))),
                            shape=(n, diag_rows.size)) @ e_diag
    a_ub = sp.vstack([sp.hstack([-row_sum, touch]), sp.hstack([e_off, -sp.eye(nu)]),
                      sp.hstack([-e_off, -sp.eye(nu)])]).tocsc()
    b_ub = np.concatenate([-np.ones(n), np.zeros(2 * nu)])
    cost = np.concatenate([b, np.zeros(nu)])
    result = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * m + [(0, None)] * nu, method="highs")
    return result.x[:m] if result.status == 0 else None
