"""MATLAB .mat graphs: the SuiteSparse layout (struct `Problem` with sparse field `A`) or a file holding
one sparse matrix named A, W or C (e.g. NicolasBoumal/maxcut). v7.3 files are HDF5 and go through h5py."""

from __future__ import annotations

import faulthandler
import multiprocessing
import signal
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from alm_bench.conic.readers.checks import MAX_ENTRIES, MAX_ORDER, adjacency, check_size
from alm_bench.errors import UserError, one_line

MATRIX_NAMES = ("A", "W", "C")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(520)
    return HDF5_MAGIC in (head[:8], head[512:520])  # MATLAB v7.3 puts a 512-byte header first


def read_graph(path: Path) -> sp.csr_matrix:
    if _is_hdf5(path):
        try:
            matrix = _read_hdf5(path)
        except UserError:
            raise
        except Exception as err:  # h5py on a damaged file: OSError, KeyError, ...
            raise UserError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({one_line(err, 200)})") from None
        return adjacency(path, matrix)
    variables = _loadmat_isolated(path)
    problem = variables.get("Problem")
    if problem is not None:
        if not hasattr(problem, "A"):
            raise UserError(f"{path}: struct Problem has no field A (the SuiteSparse layout keeps the matrix "
                            f"in Problem.A)")
        return adjacency(path, _as_matrix(path, problem.A, "Problem.A"), "matrix Problem.A")
    for name in MATRIX_NAMES:
        if name in variables:
            return adjacency(path, _as_matrix(path, variables[name], name), f"matrix {name}")
    found = ", ".join(k for k in variables if not k.startswith("__")) or "nothing"
    raise UserError(f"{path}: expected a struct Problem with field A, or a matrix named A, W or C; "
                    f"the file holds {found}")


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


def _read_hdf5(path: Path) -> sp.spmatrix:
    """A MATLAB v7.3 sparse matrix is an HDF5 group with data, ir (row indices) and jc (column starts)."""
    try:
        import h5py
    except ImportError:
        raise UserError(f"{path}: a MATLAB v7.3 (HDF5) file needs h5py: pip install 'alm-bench[sdp]' "
                        f"(or save it with -v7)") from None
    with h5py.File(path, "r") as f:
        node = None
        if "Problem" in f and "A" in f["Problem"]:
            node, name = f["Problem"]["A"], "Problem.A"
        else:
            for name in MATRIX_NAMES:
                if name in f:
                    node = f[name]
                    break
        if node is None:
            raise UserError(f"{path}: expected a struct Problem with field A, or a matrix named A, W or C")
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
