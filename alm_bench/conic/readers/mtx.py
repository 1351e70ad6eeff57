"""Matrix Market (.mtx): the weighted adjacency as a coordinate matrix (symmetric or general)."""

from __future__ import annotations

from pathlib import Path

import scipy.io
import scipy.sparse as sp

from alm_bench.conic.readers.checks import (MAX_ENTRIES, MAX_ORDER, adjacency, check_size, edges_to_adjacency,
                                            open_text, read_edge_lines)
from alm_bench.errors import UserError

FIELDS = ("real", "integer", "pattern")
SYMMETRIES = ("symmetric", "general")


def read_graph(path: Path) -> sp.csr_matrix:
    """Parsed here, not by scipy.io.mmread: its C++ parser crashes the process on some damaged files."""
    with open_text(path) as f:
        banner = f.readline().lower().split()
        if not banner or banner[0] != "%%matrixmarket":
            raise UserError(f"{path}: not a Matrix Market file (the first line must start with %%MatrixMarket)")
        if banner[1:3] != ["matrix", "coordinate"] or len(banner) < 5:
            raise UserError(f"{path}: expected a 'matrix coordinate' Matrix Market file, got {' '.join(banner)!r}")
        field, symmetry = banner[3], banner[4]
        if field not in FIELDS or symmetry not in SYMMETRIES:
            raise UserError(f"{path}: expected field {'/'.join(FIELDS)} and symmetry {'/'.join(SYMMETRIES)}, "
                            f"got {field} {symmetry}")
        lineno, line = 2, f.readline()
        while line.startswith("%") or (line and not line.strip()):
            lineno, line = lineno + 1, f.readline()
        size = line.split()
        try:
            n_rows, n_cols, nnz = (int(s) for s in size)
        except ValueError:
            raise UserError(f"{path}: line {lineno}: the size line must be 'rows cols nnz', "
                            f"got {line.strip()[:80]!r}") from None
        check_size(path, "matrix order", max(n_rows, n_cols), MAX_ORDER)
        check_size(path, "nonzero count", nnz, MAX_ENTRIES)
        if n_rows != n_cols:
            raise UserError(f"{path}: the adjacency matrix must be square, got {n_rows} x {n_cols}")
        if n_rows == 0:
            raise UserError(f"{path}: the adjacency matrix is empty (0 vertices)")
        rows, cols, weights = read_edge_lines(path, f, nnz, first_lineno=lineno + 1, counted="nnz",
                                                 unit="entries")
    if symmetry == "symmetric":  # one triangle stored
        return edges_to_adjacency(path, n_rows, rows, cols, weights)
    if rows.size and (min(rows.min(), cols.min()) < 1 or max(rows.max(), cols.max()) > n_rows):
        raise UserError(f"{path}: a vertex index is outside 1..{n_rows}")
    return adjacency(path, sp.coo_matrix((weights, (rows - 1, cols - 1)), shape=(n_rows, n_rows)))


def write_graph(path: Path, w: sp.spmatrix) -> None:
    scipy.io.mmwrite(str(path), sp.coo_matrix(w), symmetry="symmetric")
