"""SDPA sparse format (.dat-s, gzip accepted).

    (P)  min c'x  s.t.  sum_k F_k x_k - F_0 >= 0          (D)  max <F_0, Y>  s.t.  <F_k, Y> = c_k,  Y >= 0

Layout: optional comment lines (starting with " or *), m, the number of blocks, the block sizes
(negative = a diagonal/LP block), the m entries of c, then lines `k block i j value` giving the upper
triangle of F_k (k = 0..m). Separators , ( ) { } are treated as spaces, as the SDPA manual allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alm_bench.conic.readers.checks import MAX_ENTRIES, MAX_ORDER, check_size, existing_file, open_text
from alm_bench.errors import UserError

SEPARATORS = re.compile(r"[,(){}]")


@dataclass
class SDPAData:
    """The file's content, 0-based: entry t is value[t] at (row[t], col[t]) of block[t] of F_{matrix[t]},
    upper triangle only (row <= col)."""

    c: np.ndarray             # (m,)
    block_sizes: list[int]    # negative: a diagonal block of that order
    matrix: np.ndarray        # (nnz,) in 0..m
    block: np.ndarray         # (nnz,) in 0..len(block_sizes)-1
    row: np.ndarray
    col: np.ndarray
    value: np.ndarray

    @property
    def m(self) -> int:
        return int(self.c.size)


def _numbers(path: Path, line: str, what: str, lineno: int) -> list[float]:
    try:
        return [float(t) for t in SEPARATORS.sub(" ", line).split()]
    except ValueError:
        raise UserError(f"{path}: line {lineno}: expected {what}, got {line.strip()[:80]!r}") from None


def read_sdpa(path: str | Path) -> SDPAData:
    path = existing_file(path)
    with open_text(path) as f:
        lines = [(n, line) for n, line in enumerate(f, start=1)]
    body = [(n, line) for n, line in lines if line.strip()]
    while body and body[0][1].lstrip()[:1] in ('"', "*"):
        body.pop(0)  # comment lines at the top
    if len(body) < 4:
        raise UserError(f"{path}: too short for SDPA (needs m, the block count, the block sizes and c)")

    def first_int(index: int, what: str) -> int:
        lineno, line = body[index]
        token = SEPARATORS.sub(" ", line).split()[0]
        try:
            return int(float(token)) if float(token).is_integer() else int(token)
        except ValueError:
            raise UserError(f"{path}: line {lineno}: expected {what} (an integer), got {line.strip()[:80]!r}") from None

    m = first_int(0, "the number of constraints m")
    n_blocks = first_int(1, "the number of blocks")
    check_size(path, "number of constraints m", m, MAX_ENTRIES)
    if m == 0:
        raise UserError(f"{path}: the SDP has no constraints (m = 0)")
    if n_blocks <= 0 or n_blocks > MAX_ORDER:
        raise UserError(f"{path}: line {body[1][0]}: the block count must be >= 1, got {n_blocks}")
    sizes = _numbers(path, body[2][1], "the block sizes", body[2][0])[:n_blocks]
    if len(sizes) != n_blocks or any(s == 0 or not float(s).is_integer() for s in sizes):
        raise UserError(f"{path}: line {body[2][0]}: expected {n_blocks} nonzero integer block sizes, "
                        f"got {body[2][1].strip()[:80]!r}")
    block_sizes = [int(s) for s in sizes]
    check_size(path, "total matrix order", sum(abs(s) for s in block_sizes), MAX_ORDER)

    c: list[float] = []
    index = 3
    while len(c) < m and index < len(body):  # c may span several lines
        c += _numbers(path, body[index][1], f"the {m} entries of c", body[index][0])
        index += 1
    if len(c) < m:
        raise UserError(f"{path}: expected {m} entries of c, found {len(c)}")
    if len(c) > m:
        raise UserError(f"{path}: line {body[index - 1][0]}: c has more than m = {m} entries")

    rows = body[index:]
    entries = np.empty((len(rows), 5))
    for t, (lineno, line) in enumerate(rows):
        values = _numbers(path, line, "'matrix block i j value'", lineno)
        if len(values) != 5:
            raise UserError(f"{path}: line {lineno}: expected 5 numbers 'matrix block i j value', "
                            f"got {line.strip()[:80]!r}")
        entries[t] = values
    linenos = [n for n, _ in rows]
    if entries.size:  # before the indices are cast to integers
        _fail(path, linenos, ~np.isfinite(entries).all(axis=1), "NaN or Inf in an entry")
        _fail(path, linenos, (entries[:, :4] != np.round(entries[:, :4])).any(axis=1),
              "matrix, block, i and j must be integers")
        _fail(path, linenos, (np.abs(entries[:, :4]) > MAX_ORDER).any(axis=1),
              f"matrix, block, i or j above {MAX_ORDER}")
    data = SDPAData(c=np.asarray(c, dtype=np.float64), block_sizes=block_sizes,
                    matrix=entries[:, 0].astype(np.int64), block=entries[:, 1].astype(np.int64) - 1,
                    row=entries[:, 2].astype(np.int64) - 1, col=entries[:, 3].astype(np.int64) - 1,
                    value=entries[:, 4].copy())
    _validate(path, data, entries, linenos)
    return data


def _fail(path: Path, linenos: list[int], bad: np.ndarray, what: str) -> None:
    """One line naming the first offending entry's line."""
    if bad.any():
        raise UserError(f"{path}: line {linenos[int(np.flatnonzero(bad)[0])]}: {what}")


def _validate(path: Path, d: SDPAData, entries: np.ndarray, linenos: list[int]) -> None:
    def fail(bad: np.ndarray, what: str) -> None:
        _fail(path, linenos, bad, what)

    if not np.isfinite(d.c).all():
        raise UserError(f"{path}: c holds NaN or Inf")
    if entries.size:
        fail((d.matrix < 0) | (d.matrix > d.m), f"matrix number outside 0..{d.m}")
        fail((d.block < 0) | (d.block >= len(d.block_sizes)), f"block number outside 1..{len(d.block_sizes)}")
        order = np.abs(np.asarray(d.block_sizes))[d.block]
        fail((d.row < 0) | (d.col < 0) | (d.row >= order) | (d.col >= order),
             "row/column index outside its block")
        diagonal_block = np.asarray(d.block_sizes)[d.block] < 0
        fail(diagonal_block & (d.row != d.col), "off-diagonal entry in a diagonal (negative-size) block")
        # Each symmetric pair is given once; store the upper triangle and refuse repeats.
        d.row, d.col = np.minimum(d.row, d.col), np.maximum(d.row, d.col)
        key = np.stack([d.matrix, d.block, d.row, d.col], axis=1)
        _, first, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
        if (counts > 1).any():
            dup = np.ones(len(linenos), bool)
            dup[first] = False
            fail(dup, "this entry repeats an earlier (matrix, block, i, j); give each entry once")
    if not (d.matrix > 0).any():
        raise UserError(f"{path}: no constraint matrix F_1..F_m has an entry")


def write_sdpa(path: str | Path, d: SDPAData) -> None:
    """The inverse of read_sdpa (1-based indices, full double precision)."""
    with open(path, "w") as f:
        f.write(f"{d.m}\n{len(d.block_sizes)}\n{' '.join(str(s) for s in d.block_sizes)}\n")
        f.write(" ".join(f"{v:.17g}" for v in d.c) + "\n")
        for k, b, i, j, v in zip(d.matrix, d.block, d.row, d.col, d.value):
            f.write(f"{k} {b + 1} {i + 1} {j + 1} {v:.17g}\n")
