"""Property-based bad-input tests over every reader: whatever the bytes, a reader returns a valid problem or
raises one UserError line naming the file — never another exception, never a hang, never a huge allocation."""

from __future__ import annotations

import gzip
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alm_bench.errors import UserError
from alm_bench.conic.readers import read_graph
from alm_bench.conic.readers import mtx, rudy
from alm_bench.conic.readers.sdpa import read_sdpa

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def small_graph(seed: int, n: int = 7) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    w = sp.random(n, n, density=0.5, random_state=rng, format="coo")
    w = sp.triu(w, k=1)
    w.data = np.where(rng.random(w.nnz) < 0.5, -1.0, 1.0) * np.ceil(w.data * 5)
    w = (w + w.T).tocsr()
    if w.nnz == 0:
        w = sp.csr_matrix(([1.0, 1.0], ([0, 1], [1, 0])), shape=(n, n))
    return w


def assert_valid_or_one_line_error(path: Path, reader) -> None:
    try:
        result = reader(path)
    except UserError as err:
        message = str(err)
        assert str(path) in message and "\n" not in message, message
        return
    if isinstance(result, sp.spmatrix):
        assert result.shape[0] == result.shape[1] > 0
        assert abs(result - result.T).max() == 0
        assert np.isfinite(result.data).all()


# Mutations a damaged or hostile file shows: cut short, a token replaced, a line doubled, foreign bytes.
BAD_TOKENS = ["nan", "inf", "-inf", "1e309", "-1", "0", "999999999", "1000000000", "abc", "3.5", "", "1 2 3 4"]


@st.composite
def mutated_text(draw, text: str) -> bytes:
    lines = text.splitlines()
    kind = draw(st.sampled_from(["truncate", "token", "duplicate", "bytes", "header"]))
    if kind == "truncate":
        data = text.encode()
        return data[: draw(st.integers(0, len(data)))]
    i = draw(st.integers(0, len(lines) - 1))
    if kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "bytes":
        lines[i] = lines[i] + draw(st.sampled_from(["\udcff", "\x00", "é", "\ufeff"]))
        return "\n".join(lines).encode("utf-8", "surrogateescape")
    else:
        row = 0 if kind == "header" else i
        tokens = lines[row].split()
        j = draw(st.integers(0, max(0, len(tokens) - 1)))
        tokens[j:j + 1] = [draw(st.sampled_from(BAD_TOKENS))]
        lines[row] = " ".join(tokens)
    return ("\n".join(lines) + "\n").encode()


def _write(data: bytes, name: str) -> Path:
    folder = Path(tempfile.mkdtemp())
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("writer, name", [(rudy.write_graph, "g.txt"), (mtx.write_graph, "g.mtx")])
@FUZZ
@given(seed=st.integers(0, 10_000), data=st.data())
def test_text_graph_readers_on_damaged_files(writer, name, seed, data):
    folder = Path(tempfile.mkdtemp())
    writer(folder / name, small_graph(seed))
    damaged = data.draw(mutated_text((folder / name).read_text()))
    assert_valid_or_one_line_error(_write(damaged, name), read_graph)


SDPA_TINY = """* a 2-block toy: min tr(C X) with 2 constraints
2
2
2 -2
1.0 2.0
0 1 1 1 -1.0
0 1 1 2 0.5
0 2 1 1 -2.0
1 1 1 1 1.0
1 2 2 2 1.0
2 1 2 2 1.0
2 2 1 1 1.0
"""


def test_sdpa_tiny_is_valid():
    d = read_sdpa(_write(SDPA_TINY.encode(), "t.dat-s"))
    assert d.m == 2 and d.block_sizes == [2, -2]


@FUZZ
@given(data=st.data())
def test_sdpa_reader_on_damaged_files(data):
    damaged = data.draw(mutated_text(SDPA_TINY))
    assert_valid_or_one_line_error(_write(damaged, "t.dat-s"), read_sdpa)
    assert_valid_or_one_line_error(_write(gzip.compress(damaged), "t.dat-s.gz"), read_sdpa)


@FUZZ
@given(seed=st.integers(0, 10_000), layout=st.sampled_from(["Problem", "A", "W", "C"]), cut=st.floats(0, 1),
       flip=st.integers(0, 10**6))
def test_mat_reader_on_damaged_files(seed, layout, cut, flip):
    folder = Path(tempfile.mkdtemp())
    w = small_graph(seed)
    laplacian = sp.diags(np.asarray(w.sum(axis=1)).ravel()) - w
    content = {"Problem": {"A": w, "name": "Gset/test"}} if layout == "Problem" else \
        {"C": sp.csc_matrix(-laplacian / 4), "Truecost": -1.0} if layout == "C" else {layout: w}
    scipy.io.savemat(folder / "g.mat", content, do_compression=bool(seed % 2))
    assert_valid_or_one_line_error(folder / "g.mat", read_graph)  # intact: valid
    raw = bytearray((folder / "g.mat").read_bytes())
    if flip % 2:
        position = flip % len(raw)
        raw[position] ^= 0xFF
    else:
        raw = raw[: int(cut * len(raw))]
    assert_valid_or_one_line_error(_write(bytes(raw), "g.mat"), read_graph)


@pytest.mark.parametrize("name, text", [
    ("huge.txt", "1000000000 1\n1 2 1\n"),
    ("huge.mtx", "%%MatrixMarket matrix coordinate real symmetric\n1000000000 1000000000 1\n2 1 1.0\n"),
    ("huge.dat-s", "1\n1\n1000000000\n1.0\n0 1 1 1 1.0\n"),
])
def test_huge_declared_sizes_are_refused_before_allocating(name, text):
    path = _write(text.encode(), name)
    start = time.perf_counter()
    with pytest.raises(UserError, match=str(path).replace(".", r"\.")):
        (read_sdpa if name.endswith("dat-s") else read_graph)(path)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("reader", [read_graph, read_sdpa])
def test_a_directory_or_missing_file_is_one_line(reader, tmp_path):
    for target in (tmp_path, tmp_path / "missing.txt"):
        with pytest.raises(UserError) as err:
            reader(target)
        assert str(target) in str(err.value) and "\n" not in str(err.value)
