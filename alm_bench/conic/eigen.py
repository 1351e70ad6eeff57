"""The eigen-oracle of the conic problems: the smallest eigenpairs of the slack S(y) = C - A^*(y).

`BlockLOBPCG` is a warm-started block LOBPCG on torch tensors (runs on CUDA as well), converging only the
first `wanted` Ritz pairs; the rest of the block tracks the next eigenvectors so that the next call, at a
nearby y, starts close. Basis vectors are orthonormalised by SVQB with dependent directions dropped, and
S times the basis is recomputed explicitly each iteration (a recurrence for it drifts).

Ritz values overestimate lambda_min, so a reported bound is recertified by `certified_lambda_min`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg as spla
import torch
from torch import Tensor

from alm_bench.conic import sparse_psd
from alm_bench.conic.kernels import numpy_path
from alm_bench.conic.operators import CSROperator
from alm_bench.runners.stopping import SolverFailed

GUARD_COLUMNS = 4         # columns past the wanted ones that LOBPCG also iterates on
DENSE_LIMIT = 4000        # up to this order a dense eigendecomposition is the reliable, affordable fallback
DENSE_FALLBACK_LIMIT = 12000  # ... and up to this one the last resort when ARPACK fails (G60, n = 7000: 38 s)
# Confirming a claim (`confirmed_lambda_min`). Near a dense graph's optimum lambda_min is rank(X*)-fold and
# ARPACK (20 Lanczos vectors, tol 1e-10) is erratic: at BALA's iterates, one thread, 33-55 ms on G1, 100 ms
# on G14, 130-250 ms on G11 (n = 800), 39-200 ms on G43 (n = 1000), and no convergence after 1000 restarts
# (10^4 products, 0.25-0.7 s, then the dense fallback) on G11, G43 and G22 near 1e-6. Dense LAPACK took
# 27-42 ms at n = 800, 60-90 ms at n = 1000, 0.5-0.66 s at n = 2000, where ARPACK usually took 64-116 ms
# (920-1600 products). So: dense up to CONFIRM_DENSE_LIMIT; above it ARPACK with CONFIRM_RESTARTS restarts
# (about 2000 products), then dense.
CONFIRM_DENSE_LIMIT = 1000
CONFIRM_RESTARTS = 200
# A claim "lambda_min >= t" is a yes/no question, which a dense Cholesky of S - t I answers at a sixth of an
# eigendecomposition's cost (one thread: 5 vs 34 ms at n = 800, 19 vs 77 ms at 1000, 68 vs 600 ms at 2000,
# 290 ms at 3000), and as reliably: it succeeds only for a positive definite matrix, up to round-off. A sparse
# slack with little fill (a toroidal graph's) takes a sparse LDL^T instead, at any order (conic/sparse_psd.py).
CHOLESKY_LIMIT = 3000
ARPACK_NCV = 64           # Lanczos basis size for the ARPACK fallback and the final certificate
ARPACK_RESTARTS = 1000
# The residual (relative to the Gershgorin scale) to which the mixing and Burer-Monteiro loops converge the
# lambda_min of each check: a Ritz value is within ~ residual^2 / gap of its eigenvalue.
CHECK_TOL = 1e-7


@dataclass
class EigResult:
    values: Tensor        # (wanted,) ascending Ritz values
    vectors: Tensor       # (n, wanted)
    iterations: int
    residual: float       # residual norm of the first pair (the others met the call's trailing tolerance)
    converged: bool
    next_value: float     # the first Ritz value after the wanted ones
    last_value: float = float("nan")  # the block's largest Ritz value: lambda_1's error is ~ residual^2 / (this - lambda_1)

    def spread(self, scale: float) -> float:
        """last_value - lambda_1, at least 1e-12 scale: the gap that lambda_1's error residual^2 / gap divides by."""
        return max(self.last_value - float(self.values[0]), 1e-12 * scale)


def _mm(a: Tensor, b: Tensor) -> Tensor:
    """a @ b. On the CPU through numpy: its OpenBLAS ran these thin float64 products 1.6x faster than torch's
    MKL build on the AMD machine the benchmarks use (51 x 800 x 102: 250 vs 400 us), and the oracle is
    mostly such products. Transposed views go to BLAS without a copy."""
    if numpy_path(a.device):
        return torch.from_numpy(a.numpy() @ b.numpy())
    return a @ b


def _orthonormalize(s: Tensor, drop: float = 1e-10, passes: int = 2) -> Tensor:
    """SVQB: S D U mu^{-1/2} with D the column scaling; directions with mu < drop * max(mu) are dropped."""
    norms = s.norm(dim=0)
    if bool((norms > 0).all()):
        s = s / norms
    else:  # boolean indexing copies: only when a column is zero
        s = s[:, norms > 0] / norms[norms > 0]
    for _ in range(passes):  # a second pass restores orthogonality lost to round-off
        gram = _mm(s.T, s)
        mu, u = torch.linalg.eigh((gram + gram.T) / 2)
        if float(mu[0]) > drop * float(mu[-1]):
            s = _mm(s, u / mu.sqrt())
        else:
            keep = mu > drop * mu[-1]
            s = _mm(s, u[:, keep] / mu[keep].sqrt())
    return s


def _cholesky(gram: Tensor, min_ratio: float) -> Tensor | None:
    """The lower Cholesky factor of the symmetrised gram, or None when it fails or its diagonal spans more
    than 1 / min_ratio (too ill-conditioned to orthonormalise with)."""
    chol, info = torch.linalg.cholesky_ex((gram + gram.T) / 2)
    if int(info) != 0:
        return None
    d = chol.diagonal()
    return None if float(d.min()) < min_ratio * float(d.max()) else chol


def _cholesky_qr(s: Tensor) -> Tensor | None:
    """s R^{-1} with R^T R = s^T s: orthonormal columns for a well-conditioned s at a tenth of SVQB's cost
    (no eigendecomposition). None when s is too close to rank-deficient for it."""
    chol = _cholesky(_mm(s.T, s), 1e-5)
    return None if chol is None else torch.linalg.solve_triangular(chol, s.T, upper=False).T


def _rayleigh_ritz(basis: Tensor, a_basis: Tensor) -> tuple[Tensor, Tensor] | None:
    """Ritz pairs of the pencil (B^T A B, B^T B): exact for a basis that is only nearly orthonormal, so one
    orthogonalisation pass suffices (and the Ritz values stay true Rayleigh quotients, never below lambda_min).
    None when B^T B is too ill-conditioned for its Cholesky factor."""
    k = basis.shape[1]
    both = _mm(basis.T, torch.cat([a_basis, basis], dim=1))
    h, m = both[:, :k], both[:, k:]
    chol = _cholesky(m, 1e-6)
    if chol is None:
        return None
    h = torch.linalg.solve_triangular(chol, (h + h.T) / 2, upper=False)
    h = torch.linalg.solve_triangular(chol, h.T, upper=False)
    theta, v = torch.linalg.eigh((h + h.T) / 2)
    return theta, torch.linalg.solve_triangular(chol.T, v, upper=True)


def lobpcg_smallest(apply, x0: Tensor, wanted: int, tol: float, max_iter: int,
                    trailing_tol: float | None = None) -> tuple[EigResult, Tensor]:
    """Smallest `wanted` eigenpairs of the symmetric operator `apply` from the block x0 (n x bs): the first
    to residual norm `tol`, the others to `trailing_tol` (default `tol`). Returns the result and the final
    block (for the next warm start)."""
    trailing_tol = tol if trailing_tol is None else trailing_tol
    bs = x0.shape[1]
    x = _orthonormalize(x0)
    if x.shape[1] < bs:  # a degenerate warm start: refill with random directions
        extra = torch.randn(x.shape[0], bs - x.shape[1], dtype=x.dtype, device=x.device)
        x = _orthonormalize(torch.cat([x, extra], dim=1))
    ax = apply(x)
    h = _mm(x.T, ax)
    theta, c = torch.linalg.eigh((h + h.T) / 2)
    x, ax = _mm(x, c), _mm(ax, c)
    # Only the wanted columns and a few guards get new search directions; the rest of the block is the
    # subspace the Rayleigh-Ritz step draws on. Expanding every column tripled the basis (3x the cost per
    # iteration on G60, n = 7000, block 56) and made BALA slower overall: to 5e-4, G1 1.02 -> 0.79 s,
    # G11 19.6 -> 13.9 s with this rule.
    active = min(bs, wanted + GUARD_COLUMNS)
    p = None
    residual = float("inf")
    for it in range(1, max_iter + 1):
        r = ax[:, :active] - x[:, :active] * theta[:active]
        norms = r[:, :wanted].norm(dim=0)
        residual = float(norms[0])
        if residual <= tol and (wanted == 1 or float(norms[1:].max()) <= trailing_tol):
            return EigResult(theta[:wanted], x[:, :wanted], it - 1, residual, True,
                             float(theta[min(wanted, theta.numel() - 1)]), float(theta[-1])), x
        w = r if p is None else torch.cat([r, p], dim=1)
        w = w - _mm(x, _mm(x.T, w))
        w_orth = _cholesky_qr(w / w.norm(dim=0).clamp_min(1e-300))
        w = w_orth if w_orth is not None else _orthonormalize(w, passes=1)
        basis = torch.cat([x, w], dim=1)
        a_basis = apply(basis)
        ritz = _rayleigh_ritz(basis, a_basis)
        if ritz is None:  # orthogonality lost: the careful two-pass orthonormalisation, then plain RR
            for _ in range(2):
                w = w - _mm(x, _mm(x.T, w))
            w = _orthonormalize(w)
            basis = torch.cat([x, w], dim=1)
            a_basis = apply(basis)
            ritz = _rayleigh_ritz(basis, a_basis)
            if ritz is None:
                h = _mm(basis.T, a_basis)
                ritz = torch.linalg.eigh((h + h.T) / 2)
        theta_all, c_all = ritz
        theta, c = theta_all[:bs], c_all[:, :bs]
        p = _mm(w, c[x.shape[1]:, :active])   # the implicit search direction, as in Knyazev's LOBPCG
        x, ax = _mm(basis, c), _mm(a_basis, c)
    return EigResult(theta[:wanted], x[:, :wanted], max_iter, residual, False,
                     float(theta[min(wanted, theta.numel() - 1)]), float(theta[-1])), x


class BlockLOBPCG:
    """Warm-started oracle: call with the slack operator, how many eigenpairs, the block size and a tolerance.
    Falls back to a reliable solver (dense eigh, or ARPACK) when LOBPCG does not converge, and counts it."""

    def __init__(self, n: int, device: torch.device, max_iter: int = 300, seed: int = 0) -> None:
        self.n, self.device, self.max_iter = n, device, max_iter
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.block: Tensor | None = None
        self.fallbacks = 0

    def state_dict(self) -> dict:
        return {"block": None if self.block is None else self.block.cpu(), "fallbacks": self.fallbacks,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.block = None if state["block"] is None else state["block"].to(self.device)
        self.fallbacks = int(state["fallbacks"])
        self.generator.set_state(state["generator"])

    def _random(self, cols: int) -> Tensor:
        return torch.randn(self.n, cols, generator=self.generator, dtype=torch.float64).to(self.device)

    def __call__(self, slack: CSROperator, wanted: int, block_size: int, tol: float,
                 hint: Tensor | None = None, trailing_tol: float | None = None, fallback: bool = True) -> EigResult:
        """The `wanted` smallest eigenpairs; `fallback=False` returns LOBPCG's unconverged block as it is (for a
        caller that needs only an estimate, where the reliable solver would cost far more: 45 s on G60)."""
        block_size = min(max(block_size, wanted), self.n)
        x0 = self.block if self.block is not None else self._random(block_size)
        if hint is not None:  # directions known to matter (the current bundle) lead the block
            x0 = torch.cat([hint, x0], dim=1)
        x0 = x0[:, :block_size] if x0.shape[1] >= block_size else torch.cat(
            [x0, self._random(block_size - x0.shape[1])], dim=1)
        result, self.block = lobpcg_smallest(slack.mm, x0, wanted, tol, self.max_iter, trailing_tol)
        if result.converged or not fallback:
            return result
        self.fallbacks += 1
        # ARPACK to the call's own tolerance, from the block's lowest vector (smallest_eigenpairs).
        values, vectors = smallest_eigenpairs(slack, wanted + 1, residual_tol=tol,
                                              v0=self.block[:, 0].cpu().numpy())
        vectors = torch.as_tensor(vectors, device=self.device)
        self.block = torch.cat([vectors, self.block[:, vectors.shape[1]:]], dim=1)
        return EigResult(torch.as_tensor(values[:wanted], device=self.device), vectors[:, :wanted],
                         result.iterations, 0.0, True, float(values[wanted]), float(values[-1]))


class OracleFailed(SolverFailed):
    """No eigensolver converged: the run stops with this message rather than use an unconverged value."""


def _arpack_smallest(matrix, k: int, tol: float, ncv: int = ARPACK_NCV, restarts: int = ARPACK_RESTARTS,
                     v0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ARPACK's k smallest eigenpairs with a Lanczos basis of ARPACK_NCV vectors: near an SDP optimum the
    bottom of the spectrum is a near-continuum, where the default basis (20) did not converge in 10 minutes
    on G55 (n = 5000); with 64 it took 0.2 s on G60 (n = 7000). Dense LAPACK when ARPACK gives up, up to
    DENSE_FALLBACK_LIMIT; above it the oracle has failed."""
    n = matrix.shape[0]
    try:
        values, vectors = spla.eigsh(matrix, k=k, which="SA", tol=tol, ncv=min(n, max(ncv, 2 * k + 1)),
                                     maxiter=restarts, v0=fixed_start(n) if v0 is None else v0)
    except spla.ArpackNoConvergence:
        if n > DENSE_FALLBACK_LIMIT:
            raise OracleFailed(f"the eigen-oracle did not converge (LOBPCG, then ARPACK after {restarts} "
                               f"restarts) on a slack matrix of order {n}") from None
        return _dense_smallest(matrix, k)
    order = np.argsort(values)
    return values[order], vectors[:, order]


def fixed_start(n: int) -> np.ndarray:
    """ARPACK's start vector when there is no better one. Without one ARPACK draws from a generator that
    runs on across calls, so the same run gave other iterates each time (G60)."""
    return np.random.default_rng(0).standard_normal(n)


def lowest_eigenvector(slack: CSROperator, start: Tensor | None, tol: float = 1e-6,
                       restarts: int = 300) -> Tensor | None:
    """ARPACK's eigenvector of lambda_min (k = 1), started from the first column of `start`, as an (n, 1)
    tensor on the slack's device; None when ARPACK does not converge (the caller goes on without it). Its tol
    stays relative (near lambda_min = 0, close to round-off): at BALA's oracle tolerance instead (absolute) it
    cost a fifth as much on G55 but sometimes led the block to the second cluster, and descents on those
    optimistic values lost the bound (G55 to 1e-6: 1.3e-6 at 45 s, then 7e-5 at 60 s)."""
    v0 = fixed_start(slack.n) if start is None else start[:, 0].cpu().numpy()
    try:
        _, vectors = spla.eigsh(slack.scipy(), k=1, which="SA", tol=tol, ncv=min(slack.n, ARPACK_NCV),
                                maxiter=restarts, v0=v0)
    except spla.ArpackNoConvergence:
        return None
    # The slack's device, not the start's: BALA's first call has no start yet, and a CPU hint beside a
    # CUDA block would fail there (n > KRYLOV_LEAD_ORDER on a GPU).
    return torch.as_tensor(vectors, dtype=torch.float64, device=slack.data.device)


def _dense_smallest(matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    return scipy.linalg.eigh(matrix.toarray(), subset_by_index=[0, k - 1])


def dense_eigenpairs(slack: CSROperator, wanted: int, block_size: int) -> EigResult:
    """BALA's oracle at small orders: the `block_size` smallest eigenpairs of the slack by a dense eigh (LAPACK's
    subset driver), exact where LOBPCG meets only its tolerance, and cheaper at these orders."""
    k = min(block_size, slack.n)
    values, vectors = _dense_smallest(slack.scipy(), k)
    return EigResult(torch.from_numpy(values[:wanted]), torch.from_numpy(np.ascontiguousarray(vectors[:, :wanted])),
                     0, 0.0, True, float(values[min(wanted, k - 1)]), float(values[-1]))


def block_eigenpairs(matrix, ranges: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenpairs of a block-diagonal matrix (dense or scipy sparse) block by block over `ranges` (lo, hi), all
    of them ascending: values, vectors (n x k, each inside one block even where two blocks share an eigenvalue,
    as truss4's do, where an eigh of the whole matrix mixes them), and the block of each."""
    values, vectors, blocks = [], [], []
    n = matrix.shape[0]
    for b, (lo, hi) in enumerate(ranges):
        block = matrix[lo:hi, lo:hi]
        w, v = scipy.linalg.eigh(block if isinstance(block, np.ndarray) else block.toarray())
        full = np.zeros((n, hi - lo))
        full[lo:hi] = v
        values.append(w), vectors.append(full), blocks.append(np.full(hi - lo, b))
    values, vectors, blocks = np.concatenate(values), np.concatenate(vectors, axis=1), np.concatenate(blocks)
    order = np.argsort(values, kind="stable")
    return values[order], vectors[:, order], blocks[order]


def block_dense_eigenpairs(slack: CSROperator, ranges: list[tuple[int, int]], wanted: int,
                           block_size: int) -> EigResult:
    """`dense_eigenpairs` on a block-diagonal slack: each block's own eigh (sum of n_b^3, not n^3), then the
    `block_size` smallest eigenpairs of all blocks, the `wanted` first returned; every vector lies inside one
    block, where a bundle column across blocks would waste rank (bala_blocks.py)."""
    values, vectors, _ = block_eigenpairs(slack.scipy().tocsr(), ranges)
    k = min(block_size, values.size)
    values, vectors = values[:k], vectors[:, :k]
    return EigResult(torch.from_numpy(values[:wanted]), torch.from_numpy(np.ascontiguousarray(vectors[:, :wanted])),
                     0, 0.0, True, float(values[min(wanted, k - 1)]), float(values[-1]))


def smallest_eigenpairs(slack: CSROperator, k: int, residual_tol: float | None = None,
                        v0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest eigenpairs by a reliable method: dense LAPACK up to DENSE_LIMIT, else ARPACK (from `v0`
    when given), to an absolute residual `residual_tol` when given. ARPACK's own tol is relative to the Ritz
    value, ~0 near an SDP optimum: the oracle's fallback at 1e-10 ran to round-off, gave up after its restarts
    and fell through to a dense eigh, 50 s a call on G60 near 1e-6 (4 of them in a 300 s run)."""
    k = min(k, slack.n)
    if slack.n <= DENSE_LIMIT:
        return _dense_smallest(slack.scipy(), k)
    if residual_tol is None:
        return _arpack_smallest(slack.scipy(), k, 1e-10, v0=v0)
    return _arpack_to_residual(slack, k, residual_tol, v0=v0)


def _arpack_to_residual(slack: CSROperator, k: int, residual_tol: float, ncv: int = ARPACK_NCV,
                        restarts: int = ARPACK_RESTARTS, v0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ARPACK's k smallest eigenpairs of S with residuals below `residual_tol` (absolute): run on S + sigma I
    (_shifted) to relative tol residual_tol / (2 sigma)."""
    shifted, sigma = _shifted(slack)
    values, vectors = _arpack_smallest(shifted, k, max(residual_tol / (2 * sigma), 1e-15), ncv, restarts, v0)
    return values - sigma, vectors


def _shifted(slack: CSROperator):
    """S + sigma I with sigma the Gershgorin radius (every eigenvalue in [0, 2 sigma], the same vectors), and
    sigma: ARPACK's tol, relative to the Ritz value, is then a bound on the absolute residual."""
    sigma = slack.gershgorin()
    return (slack.scipy() + sigma * scipy.sparse.identity(slack.n, format="csr")).tocsr(), sigma


def certified_lambda_min(slack: CSROperator, dense_limit: int = DENSE_LIMIT, tol: float = 1e-12,
                         ncv: int = ARPACK_NCV, restarts: int = ARPACK_RESTARTS,
                         residual_tol: float | None = None) -> float:
    """A lower bound on lambda_min(S) that can be trusted: dense eigenvalues up to `dense_limit` (LAPACK,
    accurate to round-off, less a round-off margin); above it, ARPACK's Ritz value minus its residual norm.
    ARPACK's `tol` is relative to the Ritz value, which near an SDP optimum is ~0: it then runs to round-off.
    With `residual_tol` (absolute) it stops at that residual instead (_arpack_to_residual)."""
    matrix = slack.scipy()
    scale = float(abs(matrix).max()) if matrix.nnz else 1.0
    if slack.n <= dense_limit:
        value = float(scipy.linalg.eigvalsh(matrix.toarray(), subset_by_index=[0, 0])[0])
        return value - 1e-13 * slack.n * scale
    if residual_tol is not None:
        values, vectors = _arpack_to_residual(slack, 1, residual_tol, ncv, restarts)
    else:
        values, vectors = _arpack_smallest(matrix, 1, tol, ncv, restarts)
    residual = float(np.linalg.norm(matrix @ vectors[:, 0] - values[0] * vectors[:, 0]))
    return float(values[0]) - residual - 1e-13 * slack.n * scale


def lambda_min_at_least(slack: CSROperator, t: float, sparse: bool | None = None) -> float | None:
    """t when lambda_min(S) >= t is certified, else None: a sparse LDL^T of S - (t + margin) I where the slack's
    graph has little fill (conic/sparse_psd.py; `sparse` None decides by its envelope), else a dense Cholesky
    (order <= CHOLESKY_LIMIT). A Cholesky that completes in floating point is exact for a matrix within
    ~ n u |S - t I| of the one factored (Demmel), so the margin, ten times that, makes success a proof that
    S - t I is PSD; the sparse route bounds its own residual against the same margin."""
    matrix = slack.scipy()
    n = slack.n
    margin = 10 * n * np.finfo(np.float64).eps * (slack.gershgorin() + abs(t))
    if sparse if sparse is not None else sparse_psd.factor_pays(matrix):
        proven = sparse_psd.proves_at_least(matrix, t, margin)
        if proven is not None:
            return float(t) if proven else None
        if n > CHOLESKY_LIMIT:
            return None
    dense = matrix.toarray()
    dense[np.diag_indices(n)] -= t + margin
    _, info = scipy.linalg.lapack.dpotrf(dense, lower=1, overwrite_a=1, clean=0)
    return float(t) if info == 0 else None


def confirmed_lambda_min(slack: CSROperator, residual_tol: float | None = None) -> float:
    """`certified_lambda_min` to confirm a claim of convergence during a run, by the cheaper reliable method
    for the order: dense LAPACK up to CONFIRM_DENSE_LIMIT; ARPACK with 20 Lanczos vectors and at most
    CONFIRM_RESTARTS restarts, then dense, up to DENSE_LIMIT; above it ARPACK with 64 vectors, which the
    near-continuum there needs (G60: 0.12 s). A solver's own warm LOBPCG is not enough for this: on G55 and
    G60 its block, converged to 1e-7, held the second cluster of the spectrum and missed lambda_min by 5e-4
    relative. `residual_tol`: what the claim can spare of its margin (certified_lambda_min); at 1e-6 on G60 that
    halved ARPACK's time (0.6 against 1.1 s)."""
    if slack.n <= DENSE_LIMIT:
        return certified_lambda_min(slack, dense_limit=CONFIRM_DENSE_LIMIT, tol=1e-10, ncv=20,
                                    restarts=CONFIRM_RESTARTS, residual_tol=residual_tol)
    return certified_lambda_min(slack, dense_limit=0, tol=1e-10, ncv=ARPACK_NCV, residual_tol=residual_tol)
