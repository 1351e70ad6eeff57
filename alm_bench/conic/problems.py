"""Conic problems: min <C, X>  s.t.  A(X) = b,  X PSD,  with the compact set Omega = {X PSD, tr X <= gamma}.

Every constraint matrix A_k and C are sparse and symmetric; X is never formed. The operations the
solvers need all take a low-rank factor or a thin basis P (n x r) as torch tensors:
    A(V S V^T), the Gram tensor [p_a^T A_k p_b], P^T C P, and the slack matrix C - A^*(y) as an operator.
Block-diagonal SDPs (SDPA files) are embedded in one matrix of order N = sum |block sizes|: the off-block
entries appear in no constraint and not in C, so the optimal value is unchanged and C - A^*(y) stays
block diagonal (its smallest eigenvalue is the smallest over the blocks); a diagonal (LP) block is a block
whose off-diagonal entries appear nowhere, which is the same as requiring its diagonal to be >= 0.

No trace bound is asked of the user. `trace` (conic/trace.py) is a multiplier e with sum_k e_k A_k >= I where
the constraints admit one: T = <e, b> then bounds tr X on the whole feasible set and certifies every dual
bound. gamma is only where the solvers' Omega starts (T where the constraints fix tr X = T, else min(T, n));
BALA raises it while its iterates press against it (`gamma_adaptive`), and no certified bound depends on it.
Constraints diag(X) = b in any row order and scaling are recognised and stored as rows 0..n-1 with coefficient
1 (`diagonal`), for the mixing method, the feasible rescaling and row-wise operators.

Values are reported in the file's maximisation convention: the Max-Cut SDP value max <L/4, X> and the SDPA
dual value max <F_0, Y> are both -min <C, X>.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from alm_bench.conic.graphs import GraphSpec, graph_source, load_graph
from alm_bench.conic.kernels import numpy_path
from alm_bench.conic.operators import CSROperator
from alm_bench.conic.readers.checks import existing_file
from alm_bench.conic.readers.sdpa import read_sdpa
from alm_bench.conic.trace import TraceCertificate, trace_certificate
from alm_bench.errors import UserError, require, require_int, require_positive


def psd_block_ranges(block_sizes: list[int]) -> list[tuple[int, int]]:
    """(lo, hi) of each PSD block of the embedded matrix (negative sizes are diagonal, LP, blocks)."""
    offsets = np.concatenate([[0], np.cumsum(np.abs(block_sizes))]).astype(np.int64)
    return [(int(lo), int(lo + size)) for size, lo in zip(block_sizes, offsets[:-1]) if size > 0]


FACE_CHECK_ORDER = 2000   # face_constraints: the largest support it checks with a dense eigvalsh
# What the rank rule lets a factor method's copies of V (n x r doubles) take together; controller.rank (mixing)
# sets any rank.
FACTOR_MEMORY = 1 << 32   # 4 GB
MIN_RANK = 32


def factor_rank(m: int, n: int, copies: int = 8) -> int:
    """ceil(sqrt(2m)) + 1: above the Barvinok-Pataki bound, so the factorised problem has no spurious local
    minima for generic data (Boumal, Voroninski & Bandeira 2016). The method keeps `copies` factors alive (the
    mixing method ~8, 512 MB each under FACTOR_MEMORY: the bound holds up to n ~ 1.3e5 on Max-Cut; L-BFGS two
    per stored pair more). Above that the rank is what fits, at least MIN_RANK (mixing at 10^6: 67, where the
    bound's 1416 columns would take 11 GB a copy). Below the bound a spurious stationary point is possible, not
    a wrong answer: convergence is decided by the certificate (lambda_min of the slack), so such a point would
    show as a run that does not reach its tolerance."""
    bound = math.ceil(math.sqrt(2 * m)) + 1
    fits = max(MIN_RANK, FACTOR_MEMORY // (8 * n * copies))
    return min(n, bound, fits)


def relative_gap(primal: float, dual: float) -> float:
    """eps_g: |primal - dual| / (1 + |primal| + |dual|)."""
    return abs(primal - dual) / (1 + abs(primal) + abs(dual))


def lowest_dual_within(primal: float, tol: float) -> float:
    """The smallest dual value d <= primal with relative_gap(primal, d) <= tol: how weak a lower bound may be
    and still meet the tolerance (the gap grows as d falls below the primal value, so bisection finds it)."""
    low, high = primal - 2 * tol * (1 + 2 * abs(primal)) - 1.0, primal
    for _ in range(100):
        middle = 0.5 * (low + high)
        if relative_gap(primal, middle) <= tol:
            high = middle
        else:
            low = middle
        if high - low <= 1e-15 * (1 + abs(primal)):
            break
    return high


class ConicSDP:
    """min <C, X> s.t. <A_k, X> = b_k (k = 1..m), X PSD of order n, given C and the A_k as sparse triplets."""

    kind = "conic"

    def __init__(self, name: str, c: sp.spmatrix, k: np.ndarray, i: np.ndarray, j: np.ndarray, v: np.ndarray,
                 b: np.ndarray, *, trace_bound: float | None, tol: float, source: str,
                 block_sizes: list[int] | None = None) -> None:
        require_positive("problem.tol", tol)
        self.name, self.source, self.tol = name, source, float(tol)
        c = sp.csr_matrix(c, dtype=np.float64)
        self.n, self.m = c.shape[0], int(b.size)
        self.block_sizes = block_sizes or [self.n]
        self.c_op = CSROperator.from_scipy(c)
        self.c_norm = float(sp.linalg.norm(c)) if c.nnz else 0.0
        k, v, b = np.asarray(k), np.asarray(v, dtype=np.float64), np.asarray(b, dtype=np.float64)
        self.diagonal = _is_diagonal(k, i, j, v, self.n, self.m)
        if self.diagonal:   # constraint k is then row k with coefficient 1: v_k X_ii = b_k -> X_ii = b_k / v_k
            order = np.empty(self.m, dtype=np.int64)
            order[i] = k
            b = b[order] / v[order]
            k, v = np.asarray(i).copy(), np.ones(self.m)
        # Constraint triplets with both triangles stored, so every formula below is a plain sum over t.
        off = i != j
        self._k = np.concatenate([k, k[off]])
        self._i = np.concatenate([i, j[off]])
        self._j = np.concatenate([j, i[off]])
        self._v = np.concatenate([v, v[off]]).astype(np.float64)
        self.b_np = np.asarray(b, dtype=np.float64)
        self._build_slack_pattern(c)
        offsets = np.concatenate([[0], np.cumsum(np.abs(self.block_sizes))]).astype(np.int64)
        lp_mask = np.zeros(self.n, dtype=bool)
        for size, lo in zip(self.block_sizes, offsets[:-1]):
            lp_mask[lo: lo + abs(size)] = size < 0
        self.lp_index = np.flatnonzero(lp_mask)   # coordinates of the diagonal (LP) blocks
        self._lp_mask = lp_mask
        pair_keys, pair_of = np.unique(self._k.astype(np.int64) * self.n + self._i, return_inverse=True)
        self._pairs = (pair_keys // self.n, pair_keys % self.n, pair_of)   # the distinct (k, i): rows of each A_k
        self._pair_rows = sp.csr_matrix((self._v, (pair_of, self._j)), shape=(pair_keys.size, self.n))
        self._pair_sum = sp.csr_matrix((np.ones(pair_keys.size), (self._pairs[0], np.arange(pair_keys.size))),
                                       shape=(self.m, pair_keys.size))   # sums the distinct (k, i) into k
        self.trace = self._trace_certificate()
        self.trace_cap = self.trace.bound if self.trace is not None else math.inf
        self.gamma = self._trace_bound(trace_bound)
        # BALA raises gamma while its iterates press against it unless the user set it or the constraints fix
        # tr X (then gamma is exact).
        self.gamma_adaptive = trace_bound is None and not (self.trace is not None and self.trace.exact)
        self.to(torch.device("cpu"))

    def fingerprint(self) -> str:
        """SHA-256 of the data (C, the constraints, b): a checkpoint records it, so resume= never goes on
        with a problem file that changed since (the config names the file, not what is in it)."""
        digest = hashlib.sha256()
        c = self.c_op.matrix
        for part in (c.indptr, c.indices, c.data, self._k, self._i, self._j, self._v, self.b_np):
            digest.update(np.ascontiguousarray(part).tobytes())
        return digest.hexdigest()

    # ---- setup --------------------------------------------------------------------------------
    def _build_slack_pattern(self, c: sp.csr_matrix) -> None:
        """One CSR pattern holding C and every A_k (diagonal included), and where each entry lands in it."""
        coo = c.tocoo()
        n = self.n
        diag = np.arange(n)
        keys_c = coo.row.astype(np.int64) * n + coo.col
        keys_a = self._i.astype(np.int64) * n + self._j
        keys = np.concatenate([keys_c, keys_a, diag * n + diag])
        unique, inverse = np.unique(keys, return_inverse=True)
        rows = unique // n
        self._pattern_indptr = np.searchsorted(rows, np.arange(n + 1)).astype(np.int64)
        self._pattern_indices = (unique % n).astype(np.int64)
        self._pos_c = inverse[: keys_c.size]
        self._pos_a = inverse[keys_c.size: keys_c.size + keys_a.size]
        self._c_data = np.bincount(self._pos_c, weights=coo.data, minlength=unique.size)

    def _trace_certificate(self) -> TraceCertificate | None:
        """e with sum_k e_k A_k >= I and T = <e, b> >= tr X on the feasible set (conic/trace.py), or None."""
        n_entries = self._pattern_indices.size
        pattern = sp.csr_matrix((self._v, (self._pos_a, self._k)), shape=(n_entries, self.m))
        rows = np.repeat(np.arange(self.n), np.diff(self._pattern_indptr))
        found = trace_certificate(pattern, rows == self._pattern_indices, rows, self._pattern_indices, self.n,
                                  self.b_np)
        if found is not None and found.bound <= 0:
            raise UserError(f"{self.source}: the constraints bound tr X by {found.bound:.6g} <= 0, so the SDP is "
                            f"infeasible or X = 0")
        return found

    def _trace_bound(self, configured: float | None) -> float:
        """gamma of Omega = {X PSD, tr X <= gamma}, where the solvers that need one start: the user's
        problem.trace_bound, else the derived bound T where the constraints fix tr X = T, else
        min(T, n) (T may be loose: 400 on control1, whose optimal trace is 18.8), which BALA raises while
        its iterates press against it."""
        if configured is not None:
            require_positive("problem.trace_bound", configured)
            return float(configured)
        if self.trace is not None and self.trace.exact:
            return self.trace.bound
        return float(min(self.trace_cap, self.n))

    def to(self, device: torch.device) -> "ConicSDP":
        """Place the triplets and b on `device` (the solvers' torch paths run there)."""
        self.device = torch.device(device)
        t = lambda a, dtype=torch.float64: torch.as_tensor(a, dtype=dtype, device=self.device)  # noqa: E731
        self.k, self.i, self.j, self.v = t(self._k, torch.long), t(self._i, torch.long), t(self._j, torch.long), t(self._v)
        self.b = t(self.b_np)
        self.pos_a = t(self._pos_a, torch.long)
        self.pair_k, self.pair_i, self.pair_of = (t(a, torch.long) for a in self._pairs)
        self.c_data = t(self._c_data)
        self.trace_multiplier = None if self.trace is None else t(self.trace.multiplier)
        return self

    # ---- the operators (torch) --------------------------------------------------------------------
    # With diag(X) = b (self.diagonal) every operator is a row-wise formula, far cheaper than the triplet sums.
    def constraint_values(self, v: Tensor, s: Tensor | None = None) -> Tensor:
        """A(V S V^T) (S = I if None): <A_k, V S V^T> = sum_t v_t (V S)[i_t] . V[j_t]."""
        u = v if s is None else v @ s
        if self.diagonal:
            return (u * v).sum(dim=1)
        vals = self.v * (u[self.i] * v[self.j]).sum(dim=1)
        return torch.zeros(self.m, dtype=v.dtype, device=v.device).index_add_(0, self.k, vals)

    def constraint_gram(self, p: Tensor) -> Tensor:
        """G[k, a, b] = p_a^T A_k p_b, shape (m, r, r)."""
        if self.diagonal:
            return p[:, :, None] * p[:, None, :]
        rows = self._constraint_rows(p)
        out = torch.zeros(self.m, p.shape[1], p.shape[1], dtype=p.dtype, device=p.device)
        return out.index_add_(0, self.pair_k, p[self.pair_i][:, :, None] * rows[:, None, :])

    def constraint_gram_pairs(self, p: Tensor, a: Tensor, b: Tensor) -> Tensor:
        """G[k, a_t, b_t] = p_{a_t}^T A_k p_{b_t} for the given pairs only, shape (m, len(a)): BALA's block-diagonal
        S needs the pairs inside one block (truss5: 1815 of the 55 000 a full constraint_gram holds)."""
        if self.diagonal:
            return p[:, a] * p[:, b]
        rows = self._constraint_rows(p)
        if numpy_path(p.device):   # the sum over each A_k's rows as a sparse product: index_add_ was 3x slower
            pn, an, bn = p.numpy(), a.numpy(), b.numpy()
            terms = pn[self._pairs[1][:, None], an[None, :]] * rows.numpy()[:, bn]
            return torch.from_numpy(self._pair_sum @ terms)
        out = torch.zeros(self.m, a.numel(), dtype=p.dtype, device=p.device)
        return out.index_add_(0, self.pair_k, p[self.pair_i][:, a] * rows[:, b])

    def _constraint_rows(self, p: Tensor) -> Tensor:
        """y_(k,i) = sum_j (A_k)_ij p_j for the distinct (k, i), the constraint Gram's first half. By rows of each
        A_k this costs nnz r, then G[k] = sum_i p_i y_(k,i)^T costs (distinct (k, i) pairs) r^2; one outer product
        per entry cost nnz r^2, 0.26 s a call on gpp250-1, whose <J, X> = 0 alone has n^2 entries."""
        if numpy_path(p.device):   # scipy's sparse product: 6x torch's index_add here
            return torch.from_numpy(self._pair_rows @ p.numpy())
        rows = torch.zeros(self.pair_k.numel(), p.shape[1], dtype=p.dtype, device=p.device)
        return rows.index_add_(0, self.pair_of, p[self.j] * self.v[:, None])

    def lp_columns(self) -> tuple[Tensor, Tensor]:
        """(A(e_i e_i^T) for the LP coordinates i as an m x n_lp matrix, C_ii for them): the diagonal blocks'
        entries enter BALA's subproblem as variables of their own."""
        column = np.full(self.n, -1)
        column[self.lp_index] = np.arange(self.lp_index.size)
        on = (self._i == self._j) & self._lp_mask[self._i]
        a = np.zeros((self.m, self.lp_index.size))
        np.add.at(a, (self._k[on], column[self._i[on]]), self._v[on])
        c = self.c_op.matrix.diagonal()[self.lp_index]
        t = lambda v: torch.as_tensor(v, dtype=torch.float64, device=self.device)  # noqa: E731
        return t(a), t(c)

    def psd_slack(self, slack: CSROperator) -> tuple[CSROperator, float]:
        """(the slack with its LP coordinates moved above its spectrum, the smallest LP diagonal entry): the
        first's smallest eigenpairs are the PSD blocks' (an eigen-oracle over them only), the second is the
        LP blocks' lambda_min. Where there are no LP blocks, (slack, inf)."""
        if not self.lp_index.size:
            return slack, math.inf
        matrix = slack.scipy()
        lp_min = float(matrix.diagonal()[self.lp_index].min())
        keep = sp.diags((~self._lp_mask).astype(np.float64))
        above = slack.gershgorin() + 1.0
        moved = keep @ matrix @ keep + sp.diags(np.where(self._lp_mask, above, 0.0))
        return CSROperator.from_scipy(moved), lp_min

    def constraint_traces(self) -> Tensor:
        """tr A_k = A(I)."""
        diag = self.i == self.j
        return torch.zeros(self.m, dtype=torch.float64, device=self.device).index_add_(0, self.k[diag], self.v[diag])

    def adjoint_mm(self, y: Tensor, v: Tensor) -> Tensor:
        """A^*(y) V."""
        if self.diagonal:
            return y[:, None] * v
        return self.c_mm(v) - self.slack(y).mm(v)

    def c_mm(self, v: Tensor) -> Tensor:
        return self.c_op.mm(v)

    def c_trace(self) -> float:
        return float(self.c_op.matrix.diagonal().sum())

    def slack(self, y: Tensor) -> CSROperator:
        """C - A^*(y) as an operator (one per dual point)."""
        data = self.c_data.clone().index_add_(0, self.pos_a, -self.v * y[self.k])
        return CSROperator(self._pattern_indptr, self._pattern_indices, data, self.n)

    def initial_dual(self) -> Tensor:
        if self.diagonal:
            # y0 = diag(C) zeroes the diagonal of C - Diag(y0): 1.2-1.6x fewer BALA iterations than y0 = 0.
            return torch.as_tensor(self.c_op.matrix.diagonal(), dtype=torch.float64, device=self.device).clone()
        return torch.zeros(self.m, dtype=torch.float64, device=self.device)

    def face_constraints(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(k, sign, |A_k|_2) of the constraints <A_k, X> = 0 whose A_k is semidefinite (sign +1: PSD, -1: NSD).
        Each confines every feasible X to a face (X A_k = 0: no strictly feasible X, as gpp's <J, X> = 0 makes
        X e = 0), and its multiplier is free in one direction: moving y_k by -sign t (t >= 0) adds t |A_k| to
        the slack and leaves <b, y> alone, so the dual function never gets worse and the dual optima form a
        half-line in y_k. Recognised by a cheap screen (diagonal entries of one sign, off-diagonal entries only
        between rows with a diagonal entry), then a dense eigvalsh on the support up to FACE_CHECK_ORDER."""
        ks, signs, norms = [], [], []
        on_diag = self._i == self._j
        for k in np.flatnonzero(self.b_np == 0):
            at = self._k == k
            d = on_diag & at
            if not d.any():
                continue
            dv = self._v[d]
            sign = 1.0 if dv.min() >= 0 else (-1.0 if dv.max() <= 0 else 0.0)
            support = np.unique(self._i[d][dv != 0])
            if sign == 0.0 or support.size > FACE_CHECK_ORDER:
                continue
            if not (np.isin(self._i[at], support).all() and np.isin(self._j[at], support).all()):
                continue
            where = np.searchsorted(support, np.stack([self._i[at], self._j[at]]))
            dense = np.zeros((support.size, support.size))
            np.add.at(dense, (where[0], where[1]), sign * self._v[at])
            values = np.linalg.eigvalsh(dense)
            if values[0] >= -1e-12 * values[-1] and values[-1] > 0:
                ks.append(k), signs.append(sign), norms.append(values[-1])
        return np.asarray(ks, dtype=np.int64), np.asarray(signs), np.asarray(norms)

    def dual_bound(self, y: Tensor, lambda_min: float) -> float:
        """A lower bound on min <C, X> from any y, lambda_min a lower bound on lambda_min(C - A^*(y)):
        <b, y> + T min(0, lambda_min) with the trace certificate (y shifted by lambda_min e is dual feasible);
        without one <b, y> where the slack is PSD, else -inf (conic/certificate.py repairs such a y)."""
        if self.trace is not None:
            return float(self.b @ y) + self.trace.bound * min(0.0, lambda_min)
        return float(self.b @ y) if lambda_min >= 0 else -math.inf

    def has_diagonal_constraints(self) -> bool:
        """True when the constraints are diag(X) = b (Max-Cut type; recognised from the data, any order and
        scaling of the rows e_i e_i^T), which the mixing method and the feasible rescaling need."""
        return self.diagonal

    def feasible_factor(self, v: Tensor) -> Tensor | None:
        """V with its rows rescaled so that V V^T is exactly feasible, where a rescaling can do that (diag(X) = b:
        row i scaled to norm sqrt(b_i)); None otherwise, or when a row is zero."""
        if not self.has_diagonal_constraints() or bool((self.b <= 0).any()):
            return None
        norms = v.norm(dim=1)
        if bool((norms == 0).any()):   # also a factor with no columns
            return None
        return v * (self.b.sqrt() / norms)[:, None]

    # ---- reporting --------------------------------------------------------------------------------
    def report_value(self, objective: float) -> float:
        """The file's convention (a maximisation): -min <C, X>."""
        return -objective

    def summary_fields(self) -> dict[str, Any]:
        return {"file": self.source, "order": self.n, "constraints": self.m, "blocks": self.block_sizes,
                "trace_bound": self.gamma, "certified_trace_bound": self.trace_cap if self.trace else None}


class SDPAProblem(ConicSDP):
    """An SDP in SDPA sparse format: C = -F_0, A_k = F_k, b = c (the file's dual, which is in standard form)."""

    def __init__(self, path: str, tol: float = 1e-6, trace_bound: float | None = None) -> None:
        require(bool(path), "problem.path", "the SDPA file to solve", path)
        file = existing_file(path)
        data = read_sdpa(file)
        offsets = np.concatenate([[0], np.cumsum(np.abs(data.block_sizes))])
        gi, gj = offsets[data.block] + data.row, offsets[data.block] + data.col
        n = int(offsets[-1])
        f0 = data.matrix == 0
        c_upper = sp.coo_matrix((-data.value[f0], (gi[f0], gj[f0])), shape=(n, n)).tocsr()
        c = c_upper + sp.triu(c_upper, k=1).T
        con = ~f0
        super().__init__(_stem(file), c, data.matrix[con] - 1, gi[con], gj[con], data.value[con], data.c,
                         trace_bound=trace_bound, tol=tol, source=str(file), block_sizes=data.block_sizes)


class MaxCut(ConicSDP):
    """The Max-Cut SDP of a weighted graph: C = -L/4, A = diag, b = 1, gamma = n (tr X = n when feasible)."""

    def __init__(self, path: str | None = None, tol: float = 1e-6, rounding_trials: int = 64,
                 local_search: bool = True, graph: str | None = None) -> None:
        require_int("problem.rounding_trials", rounding_trials)
        origin = graph_source(path, graph)   # a file, or a generator spec (alm_bench/conic/graphs.py)
        loaded = load_graph(origin)
        self.generated = isinstance(origin, GraphSpec)
        self.adjacency, self.read_as, self.file_optimal_cost = loaded.adjacency, loaded.read_as, loaded.optimal_cost
        self.rounding_trials, self.local_search = rounding_trials, bool(local_search)
        w = self.adjacency
        laplacian = sp.diags(np.asarray(w.sum(axis=1)).ravel()) - w
        n = w.shape[0]
        idx = np.arange(n)
        name, source = (origin.name, origin.text) if self.generated else (_stem(origin), str(origin))
        super().__init__(name, -laplacian / 4, idx, idx, idx, np.ones(n), np.ones(n),
                         trace_bound=None, tol=tol, source=source)

    def summary_fields(self) -> dict[str, Any]:
        fields = {"graph" if self.generated else "file": self.source, "read_as": self.read_as, "vertices": self.n,
                  "edges": int(self.adjacency.nnz // 2)}
        if self.file_optimal_cost is not None:   # the optimum a cost-matrix file carries, for comparison
            fields["file_sdp_bound"] = -self.file_optimal_cost
        return fields


def _is_diagonal(k: np.ndarray, i: np.ndarray, j: np.ndarray, v: np.ndarray, n: int, m: int) -> bool:
    """Every constraint is one diagonal entry v_k X_ii (v_k != 0) and every row has exactly one: diag(X) = b
    after ordering and scaling the rows."""
    if m != n or k.size != m:
        return False
    return bool((i == j).all() and (v != 0).all() and np.unique(k).size == m and np.unique(i).size == n)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".dat-s", ".mat", ".mtx", ".txt"):
        name = name[: -len(suffix)] if name.lower().endswith(suffix) else name
    return name
