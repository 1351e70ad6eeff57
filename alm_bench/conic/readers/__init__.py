"""File readers for conic problems, one module per format, each validating its own input.

Graphs (Max-Cut) come back as a symmetric scipy CSR weighted adjacency with an empty diagonal (read_graph_file
adds how the file was read);
SDPA files as `SDPAData`. Every error is one `UserError` line naming the file and what was wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import scipy.sparse as sp

from alm_bench.errors import UserError

if TYPE_CHECKING:
    from alm_bench.conic.readers.checks import GraphFile

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
    return read_graph_file(path).adjacency


def read_graph_file(path: str | Path) -> "GraphFile":
    """The graph in `path` with a line saying how the file was read (a .mat's variable and its meaning)."""
    from alm_bench.conic.readers import mat, mtx, rudy
    from alm_bench.conic.readers.checks import GraphFile, existing_file

    path = existing_file(path)
    kind = graph_format(path)
    if kind == "mat":
        return mat.read_graph_file(path)
    reader, read_as = {"rudy": (rudy.read_graph, "rudy edge list (n m, then i j w per edge)"),
                       "mtx": (mtx.read_graph, "Matrix Market matrix as the weighted adjacency")}[kind]
    return GraphFile(reader(path), read_as)
