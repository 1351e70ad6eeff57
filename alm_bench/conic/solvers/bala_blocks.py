"""BALA's bundle on an SDP with several PSD blocks (truss: 33 blocks of order 4 or 10; control: 2): every bundle
column lies inside one block, and S is block-diagonal (bala_subproblem.block_pairs).

Columns across blocks would be legal (X = P S P^T only has to be PSD; the constraints see its diagonal blocks)
but they waste rank: the oracle's eigenvectors are per block, an optimal X needs every active block's range,
and a bundle of 14-40 mixed columns on truss2 (33 blocks) stalled at eps 5e-3, where S's r (r + 1) / 2
coordinates also made each subproblem slow. So new vectors are split by block, the basis is orthonormalised
block by block, and S's eigenvectors (the directions kept) come from each block's own eigh.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def row_blocks(n: int, ranges: list[tuple[int, int]]) -> np.ndarray:
    """The PSD block of each row (-1 for the LP coordinates)."""
    out = np.full(n, -1, dtype=np.int64)
    for b, (lo, hi) in enumerate(ranges):
        out[lo:hi] = b
    return out


def column_blocks(basis: Tensor, rows: np.ndarray) -> np.ndarray:
    """The block of each column of a basis whose columns each lie inside one block."""
    if not basis.shape[1]:
        return np.zeros(0, dtype=np.int64)
    return rows[basis.abs().argmax(dim=0).cpu().numpy()]


def split_by_block(vectors: Tensor, rows: np.ndarray) -> Tensor:
    """Each vector's part in each block where it has weight (relative norm above 1e-8), as separate columns."""
    parts = []
    for b in range(int(rows.max()) + 1):
        mask = torch.as_tensor(rows == b, device=vectors.device)
        part = vectors * mask[:, None]
        norms = part.norm(dim=0)
        keep = norms > 1e-8 * vectors.norm(dim=0).clamp(min=1e-300)
        parts.append(part[:, keep] / norms[keep])
    return torch.cat(parts, dim=1)


def extend_basis_blocks(kept: Tensor, new: Tensor, rows: np.ndarray, extend) -> Tensor:
    """[kept, the new directions orthonormalised against kept block by block] (`extend`: bala_loop.extend_basis,
    applied to each block's rows), every column inside one block."""
    new = split_by_block(new, rows)
    kept_blocks, new_blocks = column_blocks(kept, rows), column_blocks(new, rows)
    columns = [kept]
    for b in np.unique(new_blocks):
        on = torch.as_tensor(np.flatnonzero(rows == b), device=new.device)
        old_b = kept[on][:, torch.as_tensor(kept_blocks == b, device=new.device)]
        new_b = new[on][:, torch.as_tensor(new_blocks == b, device=new.device)]
        # A small block is soon spanned: its new parts are then round-off along old_b (truss2: residual 6e-9 of
        # a unit vector), and QR, which orders directions by column, built the others orthogonal to that
        # round-off rather than to old_b (P^T P off by 1). Only the significant range goes on, by SVD.
        for _ in range(2):
            new_b = new_b - old_b @ (old_b.T @ new_b)
        u, sigma, _ = torch.linalg.svd(new_b, full_matrices=False)
        added = extend(old_b, u[:, sigma > 1e-8])[:, old_b.shape[1]:]
        full = torch.zeros(kept.shape[0], added.shape[1], dtype=new.dtype, device=new.device)
        full[on] = added
        columns.append(full)
    return torch.cat(columns, dim=1)


def ranked_block_eigh(s: Tensor, blocks: np.ndarray, relative: float) -> tuple[Tensor, Tensor, int]:
    """A block-diagonal S's eigenpairs (columns grouped by `blocks`), each vector inside one block (a whole-matrix
    eigh mixes blocks that share an eigenvalue), the values clipped at 0 and ordered by their share of their own
    block's largest, and rank(S) counted per block (shares above `relative`). X*'s blocks differ in scale (truss2:
    trace 477 over 33 blocks), and a threshold relative to the largest of all folded whole blocks into the
    aggregate: the bundle kept 21 columns and stalled at eps 6e-3."""
    r = s.shape[0]
    values, vectors, owner = [], [], []
    for b in np.unique(blocks):
        on = torch.as_tensor(np.flatnonzero(blocks == b), device=s.device)
        w, v = torch.linalg.eigh(s[on][:, on])
        full = torch.zeros(r, on.numel(), dtype=s.dtype, device=s.device)
        full[on] = v
        values.append(w), vectors.append(full), owner.append(np.full(on.numel(), b))
    values, vectors, owner = torch.cat(values), torch.cat(vectors, dim=1), np.concatenate(owner)
    # Descending by value first (ties as an ascending stable sort, reversed), then stably by share.
    order = torch.argsort(values, stable=True).flip(0)
    values, vectors, owner = values[order].clamp(min=0), vectors[:, order], owner[order.cpu().numpy()]
    top = np.zeros(int(owner.max()) + 1)
    np.maximum.at(top, owner, values.cpu().numpy())
    share = values.cpu().numpy() / np.maximum(top[owner], 1e-300)
    order = torch.as_tensor(np.argsort(-share, kind="stable"), device=values.device)
    return values[order], vectors[:, order], int((share > relative).sum())
