"""A .mat file is read by what its matrix is: an adjacency (Problem.A, A, W) or the Max-Cut cost C = -L/4 (as the
BALA authors' data hold it, beside its optimal cost), never one as the other. Files of each kind are generated
here, in MATLAB v5 (scipy) and v7.3 (HDF5, as MATLAB writes sparse matrices) form."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from alm_bench.conic.readers import read_graph, read_graph_file
from alm_bench.errors import UserError
from conftest import run_cli


def weighted_graph(n: int = 40, seed: int = 3) -> sp.csr_matrix:
    """A connected-ish graph with weights 1..3 (and a few negative ones, as in G11's toroidal grids)."""
    rng = np.random.default_rng(seed)
    upper = sp.triu(sp.random(n, n, density=0.2, random_state=rng), k=1).tocoo()
    upper.data = np.ceil(upper.data * 3) * np.where(rng.random(upper.nnz) < 0.1, -1.0, 1.0)
    return (upper + upper.T).tocsr()


def cost_of(w: sp.spmatrix) -> sp.csc_matrix:
    laplacian = sp.diags(np.asarray(w.sum(axis=1)).ravel()) - w
    return sp.csc_matrix(-laplacian / 4)


def write_hdf5(path: Path, name: str, matrix: sp.spmatrix, scalars: dict[str, float]) -> None:
    """MATLAB v7.3's layout: a 512-byte header, then HDF5; a sparse matrix as a group data/ir/jc."""
    import h5py

    csc = sp.csc_matrix(matrix)
    with h5py.File(path, "w", userblock_size=512) as f:
        group = f.create_group(name)
        group.attrs["MATLAB_class"] = np.bytes_(b"double")
        group.attrs["MATLAB_sparse"] = np.uint64(csc.shape[0])
        group["data"], group["ir"], group["jc"] = csc.data, csc.indices.astype(np.uint64), csc.indptr.astype(np.uint64)
        for key, value in scalars.items():
            f[key] = np.array([[value]])
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file".ljust(512, b" "))


def test_each_adjacency_layout_is_read_as_the_adjacency(tmp_path):
    w = weighted_graph()
    for name, content in (("problem", {"Problem": {"A": w, "name": "test"}}), ("a", {"A": w}), ("w", {"W": w})):
        scipy.io.savemat(tmp_path / f"{name}.mat", content)
        graph = read_graph_file(tmp_path / f"{name}.mat")
        assert abs(graph.adjacency - w).max() == 0 and graph.optimal_cost is None
        assert "as the weighted adjacency" in graph.read_as


def test_a_cost_matrix_is_read_as_minus_the_laplacian_over_four(tmp_path):
    w = weighted_graph()
    scipy.io.savemat(tmp_path / "cost.mat", {"C": cost_of(w), "Truecost": -123.5})
    graph = read_graph_file(tmp_path / "cost.mat")
    assert abs(graph.adjacency - w).max() < 1e-15      # W = 4 offdiag(C), not C's off-diagonal W/4
    assert graph.optimal_cost == -123.5
    assert graph.read_as.startswith("matrix C as the Max-Cut cost C = -L/4") and "SDP bound 123.5" in graph.read_as
    scipy.io.savemat(tmp_path / "dense.mat", {"C": cost_of(w).toarray()})   # dense works alike, no optimum
    assert abs(read_graph(tmp_path / "dense.mat") - w).max() < 1e-15


@pytest.mark.skipif(importlib.util.find_spec("h5py") is None, reason="h5py is not installed (alm-bench[sdp])")
def test_v73_files_of_each_kind(tmp_path):
    w = weighted_graph()
    write_hdf5(tmp_path / "cost73.mat", "C", cost_of(w), {"Truecost": -77.25})
    graph = read_graph_file(tmp_path / "cost73.mat")
    assert abs(graph.adjacency - w).max() < 1e-15 and graph.optimal_cost == -77.25
    write_hdf5(tmp_path / "adj73.mat", "A", w, {})
    assert abs(read_graph(tmp_path / "adj73.mat") - w).max() == 0
    write_hdf5(tmp_path / "bad73.mat", "C", w, {})   # an adjacency under the cost's name
    with pytest.raises(UserError, match="is not a Max-Cut cost matrix"):
        read_graph(tmp_path / "bad73.mat")


@pytest.mark.parametrize("name, matrix, message", [
    ("C", "adjacency", "is not a Max-Cut cost matrix C = -L/4 (its rows must sum to zero"),
    ("C", "plus_laplacian", "+L/4 (the maximisation form)"),
    ("A", "cost", "a Laplacian or a cost matrix, not an adjacency"),
    ("W", "laplacian", "a Laplacian or a cost matrix, not an adjacency"),
])
def test_a_matrix_without_its_name_structure_is_one_line(tmp_path, name, matrix, message):
    w = abs(weighted_graph())   # nonnegative weights: +L/4 then has a positive diagonal throughout
    laplacian = sp.diags(np.asarray(w.sum(axis=1)).ravel()) - w
    value = {"adjacency": w, "plus_laplacian": laplacian / 4, "cost": -laplacian / 4, "laplacian": laplacian}[matrix]
    path = tmp_path / "g.mat"
    scipy.io.savemat(path, {name: sp.csc_matrix(value)})
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")) as err:
        read_graph(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_solving_a_cost_matrix_file_gives_the_bound_of_its_graph(tmp_path):
    """The issue's file: C = -L/4 beside its optimum. It was solved as the adjacency C (a bound 4x too small,
    status converged); now it gives its graph's bound, and the summary says how the file was read."""
    w = weighted_graph(n=60)
    scipy.io.savemat(tmp_path / "adjacency.mat", {"A": w})
    scipy.io.savemat(tmp_path / "cost.mat", {"C": cost_of(w)})
    bounds = {}
    for name in ("adjacency", "cost"):
        out = run_cli("solve", "maxcut", str(tmp_path / f"{name}.mat"), f"hydra.run.dir={tmp_path / name}",
                      script=True)
        assert out.returncode == 0, out.stderr
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["status"] == "converged"
        bounds[name] = summary["sdp_bound"]
        assert ("matrix C as the Max-Cut cost" if name == "cost" else "matrix A as the weighted adjacency") \
            in summary["read_as"]
    assert bounds["cost"] == pytest.approx(bounds["adjacency"], rel=1e-5)
