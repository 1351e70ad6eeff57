"""G-set / rudy text: a first line `n m`, then m lines `i j w` (1-based vertices, each edge once)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from alm_bench.conic.readers.checks import (MAX_ENTRIES, MAX_ORDER, check_size, edges_to_adjacency, open_text,
                                            read_edge_lines)
from alm_bench.errors import UserError

CHUNK = 1 << 18


def read_graph(path: Path) -> sp.csr_matrix:
    with open_text(path) as f:
        header = f.readline().split()
        if len(header) < 2:
            raise UserError(f"{path}: rudy header must be 'n m' (vertices, edges), got {' '.join(header)!r}")
        try:
            n, m = int(header[0]), int(header[1])
        except ValueError:
            raise UserError(f"{path}: rudy header must be two integers 'n m', got {' '.join(header)!r}") from None
        check_size(path, "vertex count n", n, MAX_ORDER)
        check_size(path, "edge count m", m, MAX_ENTRIES)
        if n == 0:
            raise UserError(f"{path}: the graph is empty (n = 0)")
        rows, cols, weights = read_edge_lines(path, f, m, first_lineno=2)
    return edges_to_adjacency(path, n, rows, cols, weights)


def write_graph(path: Path, w: sp.spmatrix) -> None:
    """Each edge once (upper triangle), 1-based: the inverse of read_graph; gzip-compressed when the name ends
    in .gz. Integer weights are written as integers, others with 17 significant digits (exact round trip)."""
    upper = sp.triu(sp.csr_matrix(w), k=1).tocoo()
    integral = bool(np.all(upper.data == np.round(upper.data)))
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt") as f:
        f.write(f"{w.shape[0]} {upper.nnz}\n")
        for lo in range(0, upper.nnz, CHUNK):   # in chunks: a 4e6-edge graph as one table would be ~1 GB
            hi = lo + CHUNK
            table = np.column_stack([upper.row[lo:hi] + 1, upper.col[lo:hi] + 1, upper.data[lo:hi]])
            np.savetxt(f, table, fmt="%d %d %d" if integral else "%d %d %.17g")
