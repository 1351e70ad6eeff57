"""What the one-call interior-point peers (Clarabel, CSDP) share: the block structure of an SDPA problem (PSD
blocks and diagonal, LP, blocks, embedded in one matrix by `ConicSDP`), and the measurement of a block-diagonal
solution by our own metrics, X read per block and never formed whole."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from alm_bench.conic.eigen import DENSE_LIMIT, certified_lambda_min
from alm_bench.conic.problems import ConicSDP
from alm_bench.errors import UserError


@dataclass
class Blocks:
    """Where each block of the embedded matrix lies: offsets[b]:offsets[b+1], diagonal[b] for an LP block."""

    sizes: list[int]
    offsets: np.ndarray
    diagonal: np.ndarray

    @classmethod
    def of(cls, problem: ConicSDP) -> "Blocks":
        sizes = [int(s) for s in problem.block_sizes]
        offsets = np.concatenate([[0], np.cumsum(np.abs(sizes))]).astype(np.int64)
        if offsets[-1] != problem.n:
            raise UserError(f"{problem.source}: the block sizes {sizes} add up to {offsets[-1]}, not the order "
                            f"{problem.n}")
        return cls(sizes, offsets, np.asarray(sizes) < 0)

    @property
    def psd(self) -> np.ndarray:
        """Which blocks are PSD cones (order >= 2, not diagonal); the others are nonnegative diagonals."""
        return np.array([not d and abs(s) >= 2 for s, d in zip(self.sizes, self.diagonal)])

    def locate(self, i: np.ndarray, j: np.ndarray, what: str, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(block, local i, local j) of global entries (i, j); one line if an entry lies across blocks or off
        the diagonal of a diagonal block."""
        block = np.searchsorted(self.offsets, i, side="right") - 1
        across = block != np.searchsorted(self.offsets, j, side="right") - 1
        if across.any():
            t = int(np.flatnonzero(across)[0])
            raise UserError(f"{source}: {what} has an entry ({i[t]}, {j[t]}) across two blocks")
        off_diagonal = self.diagonal[block] & (i != j)
        if off_diagonal.any():
            t = int(np.flatnonzero(off_diagonal)[0])
            raise UserError(f"{source}: {what} has an off-diagonal entry ({i[t]}, {j[t]}) in a diagonal block")
        return block, i - self.offsets[block], j - self.offsets[block]


def entries(blocks: Blocks, parts: list[np.ndarray], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """X[i, j] for global entries inside the blocks, read from the per-block parts (X is never formed)."""
    block = np.searchsorted(blocks.offsets, i, side="right") - 1
    r, c = i - blocks.offsets[block], j - blocks.offsets[block]
    out = np.zeros(i.shape)
    for b in np.unique(block):
        at = block == b
        part = parts[b]
        out[at] = np.where(r[at] == c[at], part[r[at]], 0.0) if part.ndim == 1 else part[r[at], c[at]]
    return out


def block_factor(blocks: Blocks, parts: list[np.ndarray]) -> torch.Tensor:
    """V with X ~ V V^T from each block's eigen-decomposition (diagonal blocks: sqrt(x_i) e_i), keeping the
    eigenvalues above 1e-9 times the largest over all blocks."""
    n = int(blocks.offsets[-1])
    pieces = []
    for b, part in enumerate(parts):
        if part.ndim == 1:
            pieces.append((b, part, None))
        else:
            values, vectors = np.linalg.eigh(part)
            pieces.append((b, values, vectors))
    top = max([float(values.max()) for _, values, _ in pieces if values.size] + [0.0])
    columns = []
    for b, values, vectors in pieces:
        lo = blocks.offsets[b]
        keep = np.flatnonzero(values > 1e-9 * max(top, 1e-300))
        col = np.zeros((n, keep.size))
        if vectors is None:
            col[lo + keep, np.arange(keep.size)] = np.sqrt(values[keep])
        else:
            col[lo: lo + values.size] = vectors[:, keep] * np.sqrt(values[keep])
        columns.append(col)
    return torch.from_numpy(np.concatenate(columns, axis=1) if columns else np.zeros((n, 0)))


def measured_point(problem: ConicSDP, blocks: Blocks, parts: list[np.ndarray],
                   y: np.ndarray) -> tuple[float, torch.Tensor, float, torch.Tensor]:
    """(<C, X>, A(X) - b, lambda_min(C - A^*(y)), factor) for the block-diagonal X of `parts`: per-block dense
    eigenvalues (the slack is block diagonal) while every PSD block is at most DENSE_LIMIT, else the certified
    (ARPACK) lambda_min of the whole slack."""
    values = np.bincount(problem._k, weights=problem._v * entries(blocks, parts, problem._i, problem._j),
                         minlength=problem.m)
    residual = torch.from_numpy(values - problem.b_np)
    coo = problem.c_op.matrix.tocoo()
    objective = float(coo.data @ entries(blocks, parts, coo.row.astype(np.int64), coo.col.astype(np.int64)))
    y_t = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float64))
    slack_op = problem.slack(y_t.to(problem.device))
    if max([s for s in blocks.sizes if s > 1] + [1]) <= DENSE_LIMIT:   # diagonal blocks: their diagonal
        slack = slack_op.scipy().tocsr()
        lowest = []
        for b, size in enumerate(blocks.sizes):
            lo, hi = blocks.offsets[b], blocks.offsets[b + 1]
            piece = slack[lo:hi, lo:hi]
            if size < 0 or hi - lo == 1:
                lowest.append(float(piece.diagonal().min()))
            else:
                lowest.append(float(scipy.linalg.eigvalsh(piece.toarray(), subset_by_index=[0, 0])[0]))
        lam = min(lowest)
    else:
        lam = certified_lambda_min(slack_op)
    return objective, residual, lam, block_factor(blocks, parts)
