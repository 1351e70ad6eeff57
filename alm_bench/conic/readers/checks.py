"""Validation shared by the readers: every failure is one UserError line that names the file."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable

import numpy as np
import scipy.sparse as sp

from alm_bench.errors import UserError

MAX_ORDER = 50_000_000       # a declared matrix order above this is refused before allocating anything
MAX_ENTRIES = 500_000_000    # likewise for a declared number of edges / nonzeros


@dataclass
class GraphFile:
    """A graph as read from its file, and how it was read (said in the run's summary)."""

    adjacency: sp.csr_matrix
    read_as: str
    optimal_cost: float | None = None   # a cost matrix file's own optimum of min <C, X> (an SDP bound of -it)


def existing_file(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty")
    return path


def open_text(path: Path) -> IO[str]:
    """Plain or gzip-compressed text (gzip recognised by its magic bytes, whatever the suffix)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def check_size(path: Path, what: str, value: int, limit: int) -> None:
    if value < 0 or value > limit:
        raise UserError(f"{path}: declared {what} {value} is outside [0, {limit}]")


def square_matrix(path: Path, matrix: sp.spmatrix, what: str) -> sp.csr_matrix:
    """A square, non-empty, intact, finite matrix as float64 CSR, or one line saying what it is not."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise UserError(f"{path}: the {what} must be square, got shape {matrix.shape}")
    if matrix.shape[0] == 0:
        raise UserError(f"{path}: the {what} is empty (0 vertices)")
    if hasattr(matrix, "check_format"):
        try:  # a damaged file can hold index arrays that point outside the matrix: converting those crashes
            matrix.check_format(full_check=True)
        except ValueError as err:
            raise UserError(f"{path}: the {what} is corrupt ({' '.join(str(err).split())})") from None
    m = sp.csr_matrix(matrix, dtype=np.float64)
    if not np.isfinite(m.data).all():
        raise UserError(f"{path}: the {what} holds NaN or Inf entries")
    return m


def adjacency(path: Path, matrix: sp.spmatrix, what: str = "adjacency matrix") -> sp.csr_matrix:
    """Check a weighted adjacency (square, finite, symmetric, non-empty) and return it as float64 CSR
    with no self loops (they do not change any cut, and C = -L/4 ignores them)."""
    w = square_matrix(path, matrix, what)
    w.setdiag(0)
    w.eliminate_zeros()
    if w.nnz == 0:
        raise UserError(f"{path}: the {what} has no edges")
    asym = abs(w - w.T)
    if asym.nnz and asym.max() > 1e-12 * max(1.0, abs(w).max()):
        raise UserError(f"{path}: the {what} is not symmetric (max |W - W^T| = {asym.max():.3g})")
    w.sort_indices()
    return w


def read_edge_lines(path: Path, lines: Iterable[str], count: int, first_lineno: int, counted: str = "m",
                    unit: str = "edges") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` lines `i j [w]` (w = 1 when absent) as arrays; blank lines skipped, any other line refused.
    `counted` and `unit` name the header's count in messages (rudy: m edges; Matrix Market: nnz entries)."""
    capacity = min(count, 1 << 16)  # grown as lines arrive: a header's claim alone allocates nothing big
    rows, cols, weights = np.empty(capacity, np.int64), np.empty(capacity, np.int64), np.empty(capacity)
    seen = 0
    for lineno, line in enumerate(lines, start=first_lineno):
        parts = line.split()
        if not parts:
            continue
        if seen == count:
            raise UserError(f"{path}: line {lineno}: more {unit} than the header's {counted} = {count}")
        if len(parts) not in (2, 3):
            raise UserError(f"{path}: line {lineno}: expected 'i j w', got {line.strip()[:80]!r}")
        if seen == len(rows):
            rows, cols, weights = (np.resize(a, min(count, 2 * len(a))) for a in (rows, cols, weights))
        try:
            rows[seen], cols[seen] = int(parts[0]), int(parts[1])
            weights[seen] = float(parts[2]) if len(parts) == 3 else 1.0
        except (ValueError, OverflowError):
            raise UserError(f"{path}: line {lineno}: expected integers i j and a number w, "
                            f"got {line.strip()[:80]!r}") from None
        seen += 1
    if seen != count:
        raise UserError(f"{path}: the header declares {counted} = {count} {unit}, the file holds {seen}")
    return rows[:seen], cols[:seen], weights[:seen]


def edges_to_adjacency(path: Path, n: int, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray,
                       one_based: bool = True) -> sp.csr_matrix:
    """Symmetric adjacency from an edge list that holds each undirected edge once (i j w)."""
    offset = 1 if one_based else 0
    rows, cols = rows - offset, cols - offset
    if rows.size and (min(rows.min(), cols.min()) < 0 or max(rows.max(), cols.max()) >= n):
        raise UserError(f"{path}: a vertex index is outside 1..{n}")
    if not np.isfinite(weights).all():
        raise UserError(f"{path}: an edge weight is NaN or Inf")
    w = sp.coo_matrix((weights, (rows, cols)), shape=(n, n)).tocsr()
    return adjacency(path, w + w.T - sp.diags(w.diagonal()))
