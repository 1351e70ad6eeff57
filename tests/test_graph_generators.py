"""Generated graphs (alm_bench/conic/graphs.py): each family has the structure it promises, the same spec gives
the same graph, bad specs are one line, and `alm-bench graph generate` / `solve maxcut SPEC` use them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from alm_bench.conic.graphs import generate, is_spec, parse_spec
from alm_bench.conic.problems import MaxCut
from alm_bench.conic.readers import read_graph, rudy
from alm_bench.errors import UserError
from conftest import DATA, read_summary, run_cli, run_loop


def edges(w: sp.csr_matrix) -> set[tuple[int, int]]:
    upper = sp.triu(w, k=1).tocoo()
    return set(zip(upper.row.tolist(), upper.col.tolist()))


def assert_simple_graph(w: sp.csr_matrix, n: int) -> None:
    """Square, symmetric, no self loop, every stored entry an edge (no explicit zeros)."""
    assert w.shape == (n, n) and w.diagonal().max() == 0 == w.diagonal().min()
    assert abs(w - w.T).max() == 0 and np.all(w.data != 0)


def test_toroidal_grid_is_the_4_regular_torus() -> None:
    w = generate("toroidal:6x5")
    assert_simple_graph(w, 30)
    assert w.nnz == 2 * 60 and np.all(np.diff(w.indptr) == 4)
    e = edges(w)
    for r in range(6):      # vertex (r, c) = 5 r + c joined to (r, c + 1) and (r + 1, c), wrapping around
        for c in range(5):
            v = 5 * r + c
            assert tuple(sorted((v, 5 * r + (c + 1) % 5))) in e
            assert tuple(sorted((v, 5 * ((r + 1) % 6) + c))) in e
    cube = generate("toroidal:3x4x5")
    assert_simple_graph(cube, 60)
    assert np.all(np.diff(cube.indptr) == 6)


def test_random_graph_has_exactly_m_distinct_edges_and_the_seed_decides_it() -> None:
    w = generate("random:n=500,degree=6,seed=3")
    assert_simple_graph(w, 500)
    assert w.nnz == 2 * 1500 and set(np.unique(w.data)) == {1.0}
    assert abs(generate("random:n=500,degree=6,seed=3") - w).max() == 0   # same spec, same graph
    assert edges(generate("random:n=500,m=1500,seed=3")) == edges(w)      # m= is the same count
    other = edges(generate("random:n=500,degree=6,seed=4"))
    assert len(other & edges(w)) < 100   # another seed: another graph (about 1500 * 6 / 499 = 18 shared)
    # uniform: every vertex's degree is Binomial-like with mean 6; none far off
    degrees = np.diff(w.indptr)
    assert 5.5 <= degrees.mean() <= 6.5 and degrees.max() <= 20
    # a denser graph on the same seed extends the sparser one (edges kept in draw order)
    assert edges(w) <= edges(generate("random:n=500,degree=8,seed=3"))


def test_planar_graph_is_a_triangulation_thinned_to_its_density() -> None:
    n = 2000
    full = generate(f"planar:n={n},seed=1")
    assert_simple_graph(full, n)
    m = full.nnz // 2
    assert 3 * n - 6 - 60 <= m <= 3 * n - 6   # a Delaunay triangulation: 3n - 3 - (hull vertices) edges
    half = generate(f"planar:n={n},density=50,seed=1")
    assert half.nnz // 2 == round(0.5 * (3 * n - 6)) and edges(half) <= edges(full)


def test_pm1_weights_are_signs_of_both_kinds() -> None:
    w = generate("toroidal:20x20,weights=pm1,seed=5")
    values, counts = np.unique(sp.triu(w, k=1).data, return_counts=True)
    assert values.tolist() == [-1.0, 1.0] and abs(counts[0] - counts[1]) < 120   # 800 edges, about half each
    assert abs(generate("toroidal:20x20,weights=pm1,seed=5") - w).max() == 0


@pytest.mark.parametrize("spec, message", [
    ("cube:3", "FAMILY:OPTIONS"),
    ("toroidal:", "needs its dimensions"),
    ("toroidal:2x5", ">= 3"),
    ("random:n=100", "one of degree"),
    ("random:n=100,degree=8,m=400", "one of degree"),
    ("random:n=10,degree=20", "must be in"),
    ("random:n=abc,degree=2", "n must be an integer"),
    ("random:n=10,m=100", "do not fit"),
    ("random:n=100,degree=4,colour=red", "not 'colour'"),
    ("random:n=100,degree=4,seed=-1", "seed must be >= 0"),
    ("planar:n=100,density=150", "density"),
    ("toroidal:4x4,weights=gauss", "weights must be one of"),
    ("random:n=100,degree=4,n=200", "twice"),
    ("random:n=100000000000,degree=3", "exceed the limits"),
])
def test_bad_specs_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as err:
        parse_spec(spec)
    assert "\n" not in str(err.value)


def test_a_spec_that_leaves_no_edge_is_refused() -> None:
    with pytest.raises(UserError, match="no edges"):
        generate("planar:n=5,density=1")


def test_a_spec_is_told_from_a_file_name() -> None:
    assert is_spec("toroidal:316x316") and is_spec("random:n=10,degree=2")
    assert not is_spec(str(DATA / "G14.txt")) and not is_spec("C:graph.txt") and not is_spec("G1.mat")


def test_rudy_file_round_trip_keeps_the_graph(tmp_path: Path) -> None:
    for spec in ("random:n=300,degree=5,seed=2", "toroidal:7x9,weights=pm1"):
        w = generate(spec)
        for name in ("g.txt", "g.txt.gz"):
            rudy.write_graph(tmp_path / name, w)
            assert abs(read_graph(tmp_path / name) - w).max() == 0


def test_maxcut_takes_a_spec_or_a_file_not_both() -> None:
    problem = MaxCut(graph="toroidal:6x6")
    assert problem.n == 36 and problem.name == "toroidal-6x6"
    assert problem.summary_fields()["graph"] == "toroidal:6x6" and problem.summary_fields()["edges"] == 72
    with pytest.raises(UserError, match="exactly one"):
        MaxCut(path=str(DATA / "G14.txt"), graph="toroidal:6x6")
    with pytest.raises(UserError, match="exactly one"):
        MaxCut()


def test_an_even_torus_solves_to_its_edge_count(tmp_path: Path) -> None:
    """An even toroidal grid is bipartite: the SDP value and the maximum cut both equal its edge count."""
    from alm_bench.conic.solvers.mixing import MixingMethod

    summary, _ = run_loop(MaxCut(graph="toroidal:10x12", tol=1e-6, rounding_trials=4), MixingMethod(), tmp_path)
    assert summary["status"] == "converged"
    assert summary["sdp_bound"] == pytest.approx(240, rel=2e-6) and summary["sdp_bound"] >= 240 - 1e-9
    assert summary["cut_value"] == 240


@pytest.mark.slow   # subprocesses
def test_graph_generate_and_solve_a_spec(tmp_path: Path, outputs: Path) -> None:
    out = tmp_path / "torus.txt"
    result = run_cli("graph", "generate", "toroidal:8x8", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text().splitlines()[0] == "64 128" and "64 vertices, 128 edges" in result.stdout
    assert abs(read_graph(out) - generate("toroidal:8x8")).max() == 0
    bad = run_cli("graph", "generate", "random:n=10")
    assert bad.returncode == 2 and "one of degree" in bad.stderr and "Traceback" not in bad.stderr

    result = run_cli("solve", "maxcut", "random:n=300,degree=6,seed=1", "controller=mixing", "problem.tol=1e-5",
                     "problem.rounding_trials=2")
    assert result.returncode == 0, result.stderr
    run = next((outputs / "runs").rglob("summary.json")).parent
    summary = read_summary(run)
    assert summary["status"] == "converged" and summary["graph"] == "random:n=300,degree=6,seed=1"
    assert summary["vertices"] == 300 and summary["edges"] == 900
    assert "random:n=300,degree=6,seed=1" in (run / ".hydra" / "overrides.yaml").read_text()
