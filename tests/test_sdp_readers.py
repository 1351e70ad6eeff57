"""Graph and SDPA readers: the same graph in every format gives the same problem; malformed input is
refused with one line naming the file."""

from __future__ import annotations

import faulthandler
import gzip
import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from alm_bench.errors import UserError
from alm_bench.conic.readers import mat as mat_reader, mtx, read_graph, rudy
from alm_bench.conic.readers.sdpa import read_sdpa, write_sdpa
from alm_bench.conic.problems import MaxCut, SDPAProblem

DATA = Path(__file__).parent / "data"


def test_every_format_of_g14_gives_the_same_problem(tmp_path: Path) -> None:
    text = read_graph(DATA / "G14.txt")
    mtx.write_graph(tmp_path / "G14.mtx", text)
    for other in (DATA / "G14_suitesparse.mat", DATA / "g14_plain.mat", tmp_path / "G14.mtx"):
        w = read_graph(other)
        assert w.shape == (800, 800) and abs(w - text).max() == 0, other
    a, b = MaxCut(str(DATA / "G14.txt")), MaxCut(str(DATA / "G14_suitesparse.mat"))
    assert abs(a.c_op.matrix - b.c_op.matrix).max() == 0 and a.gamma == b.gamma == 800


def test_negative_weights_survive(tmp_path: Path) -> None:
    w = read_graph(DATA / "G11.txt")
    assert set(np.unique(w.data)) == {-1.0, 1.0} and w.nnz == 2 * 1600


def test_rudy_round_trip_and_gzip(tmp_path: Path) -> None:
    w = read_graph(DATA / "G11.txt")
    rudy.write_graph(tmp_path / "g.txt", w)
    (tmp_path / "g.txt.gz").write_bytes(gzip.compress((tmp_path / "g.txt").read_bytes()))
    assert abs(read_graph(tmp_path / "g.txt.gz") - w).max() == 0


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ("3 2\n1 2 1\n", "declares m = 2"),
    ("3 1\n1 4 1\n", "outside 1..3"),
    ("3 1\n1 2 nan\n", "NaN"),
    ("3 x\n", "two integers"),
    ("99999999999 1\n1 2 1\n", "outside"),
    ("3 1\n1 2 1 7 8\n", "expected 'i j w'"),
])
def test_malformed_rudy_is_refused_naming_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as err:
        read_graph(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_malformed_mat_files(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "rect.mat", {"A": sp.random(3, 4, density=0.5, format="csc")})
    scipy.io.savemat(tmp_path / "asym.mat", {"A": sp.csc_matrix(np.array([[0, 1.0], [2.0, 0]]))})
    scipy.io.savemat(tmp_path / "none.mat", {"B": np.eye(2)})
    scipy.io.savemat(tmp_path / "nan.mat", {"W": sp.csc_matrix(np.array([[0, np.nan], [np.nan, 0]]))})
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    for name, message in (("rect", "square"), ("asym", "not symmetric"), ("none", "struct Problem"),
                          ("nan", "NaN"), ("junk", "not a readable")):
        with pytest.raises(UserError, match=message):
            read_graph(tmp_path / f"{name}.mat")


def test_mtx_general_symmetric_matrix_is_read(tmp_path: Path) -> None:
    w = sp.csr_matrix(np.array([[0, 2.0, 0], [2.0, 0, -1.0], [0, -1.0, 0]]))
    scipy.io.mmwrite(str(tmp_path / "g.mtx"), w)  # written as 'general'
    assert abs(read_graph(tmp_path / "g.mtx") - w).max() == 0
    (tmp_path / "bad.mtx").write_text("1 2 3\n")
    with pytest.raises(UserError, match="Matrix Market"):
        read_graph(tmp_path / "bad.mtx")


def test_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "g.xyz").write_text("1")
    with pytest.raises(UserError, match="unknown graph format"):
        read_graph(tmp_path / "g.xyz")


def test_sdpa_round_trip(tmp_path: Path) -> None:
    d = read_sdpa(DATA / "theta1.dat-s")
    write_sdpa(tmp_path / "t.dat-s", d)
    e = read_sdpa(tmp_path / "t.dat-s")
    assert e.block_sizes == d.block_sizes and np.array_equal(e.c, d.c)
    for field in ("matrix", "block", "row", "col", "value"):
        assert np.array_equal(getattr(e, field), getattr(d, field)), field
    (tmp_path / "t.dat-s.gz").write_bytes(gzip.compress((tmp_path / "t.dat-s").read_bytes()))
    assert np.array_equal(read_sdpa(tmp_path / "t.dat-s.gz").value, d.value)


def test_sdpa_blocks_and_diagonal_blocks(tmp_path: Path) -> None:
    # min x1 + x2 style LP block with one SDP block: comments, braces and commas as SDPA allows
    text = '"a comment\n2 =mdim\n2\n{2, -2}\n1.0, 2.0\n0 1 1 1 1\n1 1 1 1 1\n1 1 2 2 1\n2 2 1 1 1\n2 2 2 2 1\n'
    (tmp_path / "s.dat-s").write_text(text)
    p = SDPAProblem(str(tmp_path / "s.dat-s"), trace_bound=10.0)
    assert p.n == 4 and p.m == 2 and p.block_sizes == [2, -2]


@pytest.mark.parametrize("content, message", [
    ("1\n1\n2\n1.0\n1 1 3 3 1.0\n", "outside its block"),
    ("1\n1\n-2\n1.0\n1 1 1 2 1.0\n", "off-diagonal"),
    ("1\n1\n2\n1.0\n1 2 1 1 1.0\n", "block number"),
    ("1\n1\n2\n1.0\n5 1 1 1 1.0\n", "matrix number"),
    ("1\n1\n2\n1.0\n1 1 1 1 nan\n", "NaN"),
    ("1\n1\n2\n1.0\n1 1 1 1\n", "5 numbers"),
    ("1\n1\n2\n1.0\n1 1 1 1 1.0\n1 1 1 1 2.0\n", "repeats"),
    ("2\n1\n2\n1.0\n", "expected 2 entries of c"),
    ("1\n1\n0\n1.0\n1 1 1 1 1\n", "nonzero integer block sizes"),
    ("1\n1\n2\n1.0\n0 1 1 1 1.0\n", "no constraint matrix"),
])
def test_malformed_sdpa_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.dat-s"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as err:
        read_sdpa(path)
    assert str(path) in str(err.value)


def test_sdp_without_a_derivable_trace_bound_asks_for_it(tmp_path: Path) -> None:
    (tmp_path / "s.dat-s").write_text("1\n1\n2\n1.0\n0 1 1 1 1\n1 1 1 2 1\n")
    with pytest.raises(UserError, match="problem.trace_bound"):
        SDPAProblem(str(tmp_path / "s.dat-s"))


def test_a_mat_file_that_crashes_scipys_reader_is_one_line_naming_it() -> None:
    """A small .mat graph with one byte flipped (found by tests/test_reader_fuzz.py), on which scipy.io.loadmat
    died of a segmentation fault on one machine and raised ZeroDivisionError on another: either way one line
    naming the file, not the run's end."""
    path = DATA / "damaged_crashes_scipy.mat"
    with pytest.raises(UserError, match=r"damaged_crashes_scipy\.mat: not a readable MATLAB \.mat file \("):
        read_graph(path)
    assert read_graph(DATA / "G14_suitesparse.mat").shape == (800, 800)   # the child returns intact files whole


def test_a_reader_that_crashes_its_process_is_one_line(monkeypatch) -> None:
    """The crash itself, made certain: the forked child dies of SIGSEGV inside the reader."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("the reader runs in a forked child only where fork exists")

    def segfault(path):
        faulthandler.disable()
        os.kill(os.getpid(), signal.SIGSEGV)

    monkeypatch.setattr(mat_reader, "_loadmat", segfault)
    path = DATA / "G14_suitesparse.mat"
    with pytest.raises(UserError, match=r"G14_suitesparse\.mat: .*scipy's reader crashed on it: signal SIGSEGV"):
        read_graph(path)