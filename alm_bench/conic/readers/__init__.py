"""File readers for conic problems, one module per format, each validating its own input.

Graphs (Max-Cut) come back as a symmetric scipy CSR weighted adjacency with an empty diagonal;
SDPA files as `SDPAData`. Every error is one `UserError` line naming the file and what was wrong.
"""

from __future__ import annotations

from pathlib import Path

import scipy.sparse as sp

from alm_bench.errors import UserError

GRAPH_FORMATS = {".mat": "mat", ".txt": "rudy", ".rudy": "rudy", ".mtx": "mtx", ".mm": "mtx"}


def graph_format(path: Path) -> str:
    """The reader for a graph file, chosen by suffix ('.gz' is looked through); a bare name is rudy text."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    suffix = suffixes[-1] if suffixes else ""
    if suffix == "":
        return "rudy"  # G-set files are often distributed without an extension
    if suffix not in GRAPH_FORMATS:
        raise UserError(f"{path}: unknown graph format {suffix!r}; expected .mat, .mtx, or rudy text "
                        f"(.txt or no extension)")
    return GRAPH_FORMATS[suffix]


def read_graph(path: str | Path) -> sp.csr_matrix:
    """The weighted adjacency matrix of the graph in `path` (any supported format)."""
    from alm_bench.conic.readers import mat, mtx, rudy
    from alm_bench.conic.readers.checks import existing_file

    path = existing_file(path)
    reader = {"mat": mat.read_graph, "rudy": rudy.read_graph, "mtx": mtx.read_graph}[graph_format(path)]
    return reader(path)
