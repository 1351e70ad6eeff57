"""MATLAB .mat graphs, in the layouts Max-Cut data come in:

- the SuiteSparse layout: struct `Problem` with the sparse adjacency in field `A`;
- one matrix named `A` or `W`: the weighted adjacency (e.g. NicolasBoumal/maxcut);
- one matrix named `C`: the SDP's cost matrix C = -L/4 of  min <C, X>  s.t. diag(X) = 1, as the BALA authors'
  data hold it (FengYiLiao/HSODM `data/G1.mat`), often beside its optimal cost (`Truecost`). Its off-diagonal
  is W/4, so it is read as W = 4 offdiag(C); read as an adjacency it would give a bound 4x too small.

The file is accepted only when the matrix has its name's structure (an adjacency's diagonal is free, a cost
matrix's rows sum to zero); anything else is one line, never a different problem. How the file was read is
part of the run's summary (`read_as`). v7.3 files are HDF5 and go through h5py."""

from __future__ import annotations

import faulthandler
import multiprocessing
import signal
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from alm_bench.conic.readers.checks import (MAX_ENTRIES, MAX_ORDER, GraphFile, adjacency, check_size,
                                            square_matrix)
from alm_bench.errors import UserError, one_line

ADJACENCY_NAMES = ("A", "W")
COST_NAMES = ("C",)
MATRIX_NAMES = ADJACENCY_NAMES + COST_NAMES
# Scalars stored beside a cost matrix that hold its optimal cost (HSODM: Truecost), compared case-blind.
OPTIMUM_NAMES = ("truecost", "optval", "opt_val", "optimal_value", "optimal_cost", "fopt")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZERO_SUM = 1e-9    # rows of a cost matrix sum to zero within this, relative to n max|C|


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(520)
    return HDF5_MAGIC in (head[:8], head[512:520])  # MATLAB v7.3 puts a 512-byte header first


def read_graph(path: Path) -> sp.csr_matrix:
    return read_graph_file(path).adjacency


def read_graph_file(path: Path) -> GraphFile:
    if _is_hdf5(path):
        try:
            variables = _read_hdf5(path)
        except UserError:
            raise
        except Exception as err:  # h5py on a damaged file: OSError, KeyError, ...
            raise UserError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({one_line(err, 200)})") from None
    else:
        variables = _loadmat_isolated(path)
    return interpret(path, variables)


def interpret(path: Path, variables: dict) -> GraphFile:
    """The graph in a .mat file's variables, by name and structure (see the module's docstring)."""
    problem = variables.get("Problem")
    if problem is not None:
        if not hasattr(problem, "A"):
            raise UserError(f"{path}: struct Problem has no field A (the SuiteSparse layout keeps the matrix "
                            f"in Problem.A)")
        return _as_adjacency(path, _as_matrix(path, problem.A, "Problem.A"), "Problem.A",
                             "struct Problem, field A (SuiteSparse layout), as the weighted adjacency")
    for name in ADJACENCY_NAMES:
        if name in variables:
            return _as_adjacency(path, _as_matrix(path, variables[name], name), name,
                                 f"matrix {name} as the weighted adjacency")
    for name in COST_NAMES:
        if name in variables:
            return _cost_matrix(path, _as_matrix(path, variables[name], name), name, _optimum(variables))
    found = ", ".join(k for k in variables if not k.startswith("__")) or "nothing"
    raise UserError(f"{path}: expected a struct Problem with field A, a matrix A or W (the adjacency) or C (the "
                    f"cost C = -L/4); the file holds {found}")


def _zero_row_sums(c: sp.csr_matrix) -> bool:
    scale = abs(c).max() if c.nnz else 0.0
    return bool(scale > 0 and np.abs(np.asarray(c.sum(axis=1))).max() <= ZERO_SUM * c.shape[0] * scale)


def _as_adjacency(path: Path, matrix: sp.spmatrix, name: str, read_as: str) -> GraphFile:
    m = square_matrix(path, matrix, f"matrix {name}")
    if m.diagonal().any() and _zero_row_sums(m):
        raise UserError(f"{path}: matrix {name} has a nonzero diagonal that cancels its rows (each row sums to "
                        f"zero): a Laplacian or a cost matrix, not an adjacency; save a cost C = -L/4 as C, or "
                        f"the adjacency (W_ij = weight of edge ij) as {name}")
    return GraphFile(adjacency(path, m, f"matrix {name}"), read_as)


def _cost_matrix(path: Path, matrix: sp.spmatrix, name: str, optimum: tuple[str, float] | None) -> GraphFile:
    """C = -L/4 of a weighted graph: off-diagonal C_ij = W_ij/4, diagonal -deg_i/4, so every row sums to zero."""
    c = square_matrix(path, matrix, f"matrix {name}")
    if not _zero_row_sums(c):
        raise UserError(f"{path}: matrix {name} is not a Max-Cut cost matrix C = -L/4 (its rows must sum to zero; "
                        f"the largest row sum is {np.abs(np.asarray(c.sum(axis=1))).max():.3g}); save a graph's "
                        f"adjacency as A, or solve a general SDP from an SDPA file with `alm-bench solve sdp`")
    w = adjacency(path, 4 * (c - sp.diags(c.diagonal())), f"matrix {name}")   # symmetric, with edges
    if (w.data < 0).all():
        raise UserError(f"{path}: matrix {name} has a positive diagonal and negative off-diagonal, i.e. +L/4 (the "
                        f"maximisation form); alm-bench reads C as the cost of min <C, X>, C = -L/4: save -C, or "
                        f"the adjacency as A")
    read_as = f"matrix {name} as the Max-Cut cost C = -L/4 of min <C,X> s.t. diag(X) = 1, so W = 4 offdiag({name})"
    if optimum is None:
        return GraphFile(w, read_as)
    label, value = optimum
    return GraphFile(w, f"{read_as}; its {label} = {value:.12g} is min <C,X> (SDP bound {-value:.12g})", value)


def _optimum(variables: dict) -> tuple[str, float] | None:
    for key, value in variables.items():
        if key.lower() in OPTIMUM_NAMES:
            array = np.asarray(value, dtype=object if sp.issparse(value) else None)
            if array.size == 1 and np.issubdtype(array.dtype, np.number) and np.isfinite(array).all():
                return key, float(array.reshape(()))
    return None


def _loadmat(path: Path) -> dict:
    try:
        return scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as err:  # a damaged file surfaces as any of ValueError, IndexError, zlib.error, ...
        raise UserError(f"{path}: not a readable MATLAB .mat file ({one_line(err, 200)})") from None


def _load_into(conn, path: Path) -> None:
    faulthandler.disable()   # a crash here is reported by the parent in one line, not as a stack dump
    try:
        conn.send(("ok", _loadmat(path)))
    except UserError as err:
        conn.send(("error", str(err)))


def _loadmat_isolated(path: Path) -> dict:
    """scipy's .mat reader in a forked child: on some damaged files it crashes the process (a segmentation
    fault in scipy.io.matlab, found by tests/test_reader_fuzz.py), which must be one line naming the file, not
    the end of a run. A fork costs ~10 ms; where there is no fork, the reader runs here."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return _loadmat(path)
    mp = multiprocessing.get_context("fork")
    receive, send = mp.Pipe(duplex=False)
    child = mp.Process(target=_load_into, args=(send, path), daemon=True)
    child.start()
    send.close()
    try:
        kind, value = receive.recv()
    except EOFError:   # the child died before it could answer
        kind, value = None, None
    finally:
        receive.close()
        child.join()
    if kind == "ok":
        return value
    if kind == "error":
        raise UserError(value)
    how = f"signal {signal.Signals(-child.exitcode).name}" if child.exitcode and child.exitcode < 0 else \
        f"exit code {child.exitcode}"
    raise UserError(f"{path}: not a readable MATLAB .mat file (scipy's reader crashed on it: {how})")


def _as_matrix(path: Path, value: object, name: str) -> sp.spmatrix:
    if sp.issparse(value):
        return value
    array = np.asarray(value)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise UserError(f"{path}: {name} must be a 2-D numeric matrix, got {array.dtype} of shape {array.shape}")
    return sp.csr_matrix(array.astype(np.float64))


def _read_hdf5(path: Path) -> dict:
    """The variables interpret() looks at, from a MATLAB v7.3 (HDF5) file: the graph's matrix (a sparse matrix
    is a group with data, ir (row indices) and jc (column starts); a dense one is stored transposed) and any
    scalar that may hold an optimum."""
    try:
        import h5py
    except ImportError:
        raise UserError(f"{path}: a MATLAB v7.3 (HDF5) file needs h5py: pip install 'alm-bench[sdp]' "
                        f"(or save it with -v7)") from None
    with h5py.File(path, "r") as f:
        variables: dict = {}
        if "Problem" in f and "A" in f["Problem"]:
            variables["Problem"] = _Struct(A=_h5_matrix(path, f["Problem"]["A"], "Problem.A"))
            return variables
        for name in MATRIX_NAMES:
            if name in f:
                variables[name] = _h5_matrix(path, f[name], name)
                break
        if not variables:
            raise UserError(f"{path}: expected a struct Problem with field A, a matrix A or W (the adjacency) or C "
                            f"(the cost C = -L/4)")
        for key in f:
            if key.lower() in OPTIMUM_NAMES and isinstance(f[key], h5py.Dataset) and f[key].size == 1:
                variables[key] = np.asarray(f[key], dtype=np.float64)
        return variables


class _Struct:
    def __init__(self, **fields: object) -> None:
        self.__dict__.update(fields)


def _h5_matrix(path: Path, node, name: str) -> sp.spmatrix:
    import h5py

    if isinstance(node, h5py.Dataset):  # a dense matrix (stored transposed by MATLAB)
        return sp.csr_matrix(np.asarray(node, dtype=np.float64).T)
    if not all(k in node for k in ("data", "ir", "jc")):
        raise UserError(f"{path}: {name} is neither a dense nor a MATLAB sparse matrix")
    jc = np.asarray(node["jc"], dtype=np.int64)
    n_rows = int(node.attrs.get("MATLAB_sparse", jc.size - 1))
    check_size(path, "matrix order", max(n_rows, jc.size - 1), MAX_ORDER)
    check_size(path, "nonzero count", int(jc[-1]) if jc.size else 0, MAX_ENTRIES)
    data = np.asarray(node["data"], dtype=np.float64)
    ir = np.asarray(node["ir"], dtype=np.int64)
    return sp.csc_matrix((data, ir, jc), shape=(n_rows, jc.size - 1))
