"""A proof that lambda_min(S) >= t for a sparse slack S, by a sparse LDL^T of S - s I (s a little above t).

Where a slack's graph has little fill under a good ordering (toroidal and planar graphs: G48, G11), the factor
costs a few ms where a dense Cholesky costs n^3 / 3 (G48, n = 3000: 6 ms against 290 ms). SuperLU factors
P (S - s I) P^T = L U with diagonal pivots in symmetric mode, so in exact arithmetic U = D L^T. The proof does
not rest on that: with D = diag(U) > 0, L D L^T is positive semidefinite exactly (a congruence of a positive
diagonal), and the residual E = P (S - s I) P^T - L D L^T, formed from the computed L and D with a bound on
its own rounding, satisfies lambda_min(S - s I) >= -|E|_2 >= -|E|_inf (E symmetric). So
lambda_min(S) >= s - |E|_inf, and s - t covers that bound, or no proof is claimed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import reverse_cuthill_mckee

# The factor is tried only where the slack's envelope after reverse Cuthill-McKee (an upper bound on an envelope
# factor's fill) is at most this many entries a row: G48 73, G11 16; dense random graphs 244-823 (G14, G22, G43,
# G1), where the dense Cholesky is cheaper, and G55/G60 1143-1579 (their factor took 0.3 s and has 216 entries a
# column, whose L D L^T would cost more than ARPACK).
ENVELOPE_PER_ROW = 128


def envelope_per_row(matrix: sp.csr_matrix) -> float:
    """The envelope (profile) of the matrix after reverse Cuthill-McKee, per row: O(nnz) to compute."""
    n = matrix.shape[0]
    if n == 0:
        return 0.0
    perm = reverse_cuthill_mckee(matrix, symmetric_mode=True)
    permuted = matrix[perm][:, perm].tocsr()
    rows = np.arange(n)
    first = rows.copy()
    nonempty = np.diff(permuted.indptr) > 0
    if nonempty.any():   # each nonempty row's segment of indices ends where the next nonempty row's starts
        first[nonempty] = np.minimum.reduceat(permuted.indices, permuted.indptr[:-1][nonempty])
    return float(np.maximum(rows - first, 0).sum()) / n


def factor_pays(matrix: sp.spmatrix) -> bool:
    """Whether the sparse LDL^T is the cheap route for this slack (ENVELOPE_PER_ROW)."""
    return envelope_per_row(sp.csr_matrix(matrix)) <= ENVELOPE_PER_ROW


def _gamma(k: int) -> float:
    u = np.finfo(np.float64).eps / 2
    return k * u / (1 - k * u)


def proves_at_least(matrix: sp.spmatrix, t: float, margin: float) -> bool | None:
    """True when lambda_min(matrix) >= t is proven by the LDL^T of matrix - (t + margin) I; False when a pivot
    is not positive (matrix - (t + margin) I is then not positive definite, up to round-off: no proof); None
    when the factor cannot decide (non-symmetric pivoting, or a residual above the margin): the caller then
    takes the dense route."""
    n = matrix.shape[0]
    s = t + margin
    shifted = (sp.csc_matrix(matrix) - s * sp.identity(n, format="csc")).tocsc()
    shifted.sum_duplicates()
    try:
        lu = spla.splu(shifted, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options={"SymmetricMode": True})
    except RuntimeError:   # an exactly zero pivot: singular, so not positive definite
        return False
    if not np.array_equal(lu.perm_r, lu.perm_c):
        return None
    d = lu.U.diagonal()
    if not bool((d > 0).all()):
        return False
    lower = lu.L.tocsr()
    inverse = np.empty(n, dtype=np.int64)
    inverse[lu.perm_r] = np.arange(n)
    # P A P^T with P taking row i to perm_r[i]: entry (perm_r[i], perm_r[j]) = A[i, j].
    permuted = shifted.tocsr()[inverse][:, inverse]
    product = (lower @ sp.diags(d) @ lower.T).tocsr()
    residual = (permuted - product).tocsr()
    abs_lower = abs(lower)
    terms = int(np.diff(lower.indptr).max()) + 2   # the longest inner product, the scaling by d, the subtraction
    unit = np.finfo(np.float64).eps / 2
    sums_error = 1 + 2 * n * unit                  # the row sums below are themselves rounded
    abs_product_rows = abs_lower @ (d * (abs_lower.T @ np.ones(n)))
    bound = (sums_error * (1 + unit) * float(np.asarray(abs(residual).sum(axis=1)).max(initial=0.0))
             + sums_error * _gamma(terms) * float(abs_product_rows.max(initial=0.0))
             + unit * float(abs(shifted.diagonal()).max(initial=0.0)))
    return True if bound <= margin else None
