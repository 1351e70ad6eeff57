"""BALA on SDPs with several PSD blocks (alm_bench/conic/solvers/bala_blocks.py): bundle columns inside one block,
S block-diagonal in the subproblem, the oracle per block, rank counted per block; truss2 (33 blocks) to 1e-6."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from alm_bench.conic.eigen import block_dense_eigenpairs
from alm_bench.conic.problems import SDPAProblem, psd_block_ranges
from alm_bench.conic.solvers.bala import BALA
from alm_bench.conic.solvers.bala_blocks import column_blocks, extend_basis_blocks, ranked_block_eigh, row_blocks
from alm_bench.conic.solvers.bala_loop import extend_basis
from alm_bench.conic.solvers.bala_subproblem import SvecMaps, block_pairs, solve_subproblem_np
from conftest import DATA, run_loop

TRUSS2 = -123.380356   # SDPLIB 1.2, the file's (maximisation) convention


def test_block_ranges_skip_diagonal_blocks() -> None:
    assert psd_block_ranges([4, -3, 1, 2]) == [(0, 4), (7, 8), (8, 10)]
    assert row_blocks(10, [(0, 4), (7, 8), (8, 10)]).tolist() == [0, 0, 0, 0, -1, -1, -1, 1, 2, 2]


def test_svec_maps_keep_only_pairs_inside_a_block() -> None:
    """S's coordinates are the pairs inside one block; smat is 0 across blocks, and stack/unstack (the batched
    per-order form) and svec/smat are each other's inverses on block-diagonal matrices."""
    blocks = np.array([0, 1, 0, 2, 1, 1])
    maps = SvecMaps(6, blocks)
    a, b = block_pairs(6, blocks)
    assert maps.size == 3 + 6 + 1 and (blocks[a] == blocks[b]).all()
    rng = np.random.default_rng(0)
    s = rng.standard_normal((6, 6))
    s = (s + s.T) * (blocks[:, None] == blocks[None, :])
    x = maps.svec(s).copy()
    assert np.allclose(maps.smat(x), s)
    assert np.isclose(x @ x, (s * s).sum())   # <S, S> = svec . svec
    stacked = maps.stack(x)
    assert sorted(m.shape for m in stacked) == [(1, 1, 1), (1, 2, 2), (1, 3, 3)]
    assert np.allclose(maps.unstack(stacked, np.zeros(maps.size)), x)
    assert all(np.allclose(u, v) for u, v in zip(maps.blocks_of(s), stacked))


def test_extend_basis_blocks_stays_orthonormal_and_inside_blocks() -> None:
    """New vectors are split by block and added block by block; a block already spanned takes nothing more, even
    where a new part is round-off along it (truss2: QR built P with P^T P off by 1 from such a part)."""
    rows = row_blocks(9, [(0, 4), (4, 8), (8, 9)])
    generator = torch.Generator().manual_seed(0)
    basis = torch.zeros(9, 0, dtype=torch.float64)
    for _ in range(4):
        basis = extend_basis_blocks(basis, torch.randn(9, 6, dtype=torch.float64, generator=generator), rows,
                                    extend_basis)
        assert torch.allclose(basis.T @ basis, torch.eye(basis.shape[1], dtype=torch.float64), atol=1e-12)
        blocks = column_blocks(basis, rows)
        for j, block in enumerate(blocks):
            assert float(basis[torch.as_tensor(rows != block), j].abs().max()) == 0.0
    assert np.bincount(column_blocks(basis, rows)).tolist() == [4, 4, 1]
    kept = basis[:, :3]
    nearly = kept[:, :1] + 1e-9 * torch.randn(9, 1, dtype=torch.float64, generator=generator)
    grown = extend_basis_blocks(kept, torch.cat([nearly, torch.randn(9, 3, dtype=torch.float64,
                                                                     generator=generator)], dim=1), rows, extend_basis)
    assert torch.allclose(grown.T @ grown, torch.eye(grown.shape[1], dtype=torch.float64), atol=1e-10)


def test_block_oracle_and_ranked_block_eigh_give_vectors_inside_one_block() -> None:
    """truss4 has blocks that share eigenvalues: the per-block eigh returns the same smallest values as the whole
    matrix, each vector inside one block, with residual at round-off."""
    problem = SDPAProblem(str(DATA / "truss4.dat-s"))
    slack = problem.slack(torch.ones(problem.m) * 0.1)
    ranges = psd_block_ranges(problem.block_sizes)
    found = block_dense_eigenpairs(slack, ranges, 5, 9)
    matrix = slack.scipy().toarray()
    exact = np.linalg.eigvalsh(matrix)
    assert np.allclose(found.values.numpy(), exact[:5], atol=1e-12 * abs(exact).max())
    assert found.last_value == pytest.approx(exact[8], abs=1e-12 * abs(exact).max())
    vectors = found.vectors.numpy()
    assert np.abs(matrix @ vectors - vectors * found.values.numpy()).max() <= 1e-10 * abs(exact).max()
    rows = row_blocks(problem.n, ranges)
    for j in range(vectors.shape[1]):
        assert np.count_nonzero(np.unique(rows[np.abs(vectors[:, j]) > 0])) == 1
    s = torch.block_diag(torch.eye(2, dtype=torch.float64) * 3.0, torch.tensor([[2.0, 1.0], [1.0, 2.0]],
                                                                               dtype=torch.float64))
    values, vecs, rank = ranked_block_eigh(s, np.array([0, 0, 1, 1]), 0.5)
    assert torch.allclose(values, torch.tensor([3.0, 3.0, 3.0, 1.0], dtype=torch.float64)) and rank == 3
    assert torch.allclose(s @ vecs, vecs * values)
    assert all(int(((vecs[:, j].abs() > 0)[:2]).any()) + int(((vecs[:, j].abs() > 0)[2:]).any()) == 1
               for j in range(4))


def test_rank_is_counted_per_block() -> None:
    """A block at a thousandth of another's scale still counts towards rank(S) (truss2's X* has such blocks):
    relative to the largest of all, its directions were folded into the aggregate and the run stalled."""
    values = torch.tensor([50.0, 10.0, 0.05, 1e-12], dtype=torch.float64)
    blocks = np.array([0, 0, 1, 1])
    ordered, _, rank = ranked_block_eigh(torch.diag(values), blocks, 1e-3)
    assert rank == 3 and ordered.tolist()[:3] == [50.0, 0.05, 10.0]
    assert int((values > 1e-3 * values.max()).sum()) == 2   # what the single-block rule would count


def test_constraint_gram_pairs_matches_the_full_gram() -> None:
    problem = SDPAProblem(str(DATA / "truss4.dat-s"))
    p = torch.from_numpy(np.random.default_rng(1).standard_normal((problem.n, 5)))
    a, b = torch.triu_indices(5, 5)
    assert torch.allclose(problem.constraint_gram_pairs(p, a, b), problem.constraint_gram(p)[:, a, b])


def test_block_subproblem_matches_the_full_one_on_pure_columns() -> None:
    """With every column inside one block the coordinates across blocks carry nothing (their A and C parts are 0):
    the block subproblem reaches the full one's value, with a block-diagonal S."""
    rng = np.random.default_rng(2)
    blocks = np.array([0, 0, 1, 1, 1])
    full, part = SvecMaps(5), SvecMaps(5, blocks)
    m = 6
    mats = []
    for _ in range(m):
        g = rng.standard_normal((5, 5))
        mats.append((g + g.T) * (blocks[:, None] == blocks[None, :]))
    c = rng.standard_normal((5, 5))
    c = (c + c.T) * (blocks[:, None] == blocks[None, :])
    y, b, rho, gamma = rng.standard_normal(m), rng.standard_normal(m), 1.5, 4.0

    def solve(maps: SvecMaps) -> tuple[float, np.ndarray]:
        a_sub = np.array([[0.0, *maps.svec(mk)] for mk in mats])
        c_vec = np.array([0.0, *maps.svec(c)])
        gram, q = a_sub.T @ a_sub, rho * (a_sub.T @ b) + a_sub.T @ y - c_vec
        gram[0, :], gram[:, 0], q[0] = 0.0, 0.0, 0.0
        residual_sq = lambda x: float(np.square(b - a_sub @ x).sum())  # noqa: E731
        x, *_ = solve_subproblem_np(gram, q, rho, gamma, 5, False, np.zeros(1 + maps.size), residual_sq, 1e-3,
                                    20000, column_blocks=maps.blocks)
        return 0.5 * rho * float(x @ gram @ x) - float(q @ x), maps.smat(x[1:]).copy()

    value_full, _ = solve(full)
    value_part, s = solve(part)
    assert value_part == pytest.approx(value_full, rel=1e-6, abs=1e-8)
    assert np.abs(s[:2, 2:]).max() == 0.0 and np.linalg.eigvalsh(s).min() >= -1e-10


@pytest.mark.slow
def test_bala_solves_truss2_with_33_blocks_to_1e6(tmp_path: Path) -> None:
    """truss2 (SDPLIB): 33 PSD blocks of order 4 and one of order 1, no trace bound, X*'s blocks of very
    different scales. With mixed columns and the rank counted over all blocks it stalled at eps 5e-3."""
    problem = SDPAProblem(str(DATA / "truss2.dat-s"), tol=1e-6)
    summary, rows = run_loop(problem, BALA(), tmp_path)
    assert summary["status"] == "converged" and max(summary["eps_p"], summary["eps_d"], summary["eps_g"]) <= 1e-6
    assert abs(summary["sdp_value"] - TRUSS2) <= 2e-6 * abs(TRUSS2)
    assert max(row["rank"] for row in rows) <= problem.n


def test_the_torch_path_takes_blocks_too(tmp_path: Path) -> None:
    """device=cuda's branch (torch kernels, run here on CPU tensors): the same block handling on truss1 (7 blocks),
    without the interior-point fallback, to 1e-6 and SDPLIB's value."""
    from alm_bench.conic.kernels import torch_kernels

    with torch_kernels():
        summary, rows = run_loop(SDPAProblem(str(DATA / "truss1.dat-s"), tol=1e-6), BALA(), tmp_path)
    assert summary["status"] == "converged" and max(summary["eps_p"], summary["eps_d"], summary["eps_g"]) <= 1e-6
    assert abs(summary["sdp_bound"] - (-8.999996)) <= 1e-6 * 9
    assert max(row["rank"] for row in rows) <= 13


def test_interior_point_retries_with_the_cap_barrier_and_remembers_it(monkeypatch) -> None:
    """For constraints that fix tr X the interior-point method first runs without the cap's barrier; where its
    minimiser lies far outside the cap (here the objective rewards trace along directions A does not see, as
    qap5's early subproblems did) that misses the rule, and the barrier's run meets it. report["capped"] says
    which run gave x, and cap_first (what BALA's loop then passes) tries the barrier first."""
    import alm_bench.conic.solvers.bala_interior as interior

    rng = np.random.default_rng(0)
    r, gamma, rho = 4, 3.0, 10.0
    maps = SvecMaps(r, None)
    v = rng.standard_normal(r)
    a_sub = np.array([[0.0, *maps.svec(np.diag([1.0, -1.0, 0.0, 0.0]))], [0.0, *maps.svec(np.outer(v, v))]])
    b = np.array([0.5, 1.1 * gamma * float(v @ v)])   # just out of the cap's reach: a residual at the optimum
    reward = np.array([0.0, *maps.svec(np.eye(r))])   # <I, X>: unbounded without the cap
    gram, q = a_sub.T @ a_sub, rho * (a_sub.T @ b) + 5.0 * reward
    residual_sq = lambda x: float(np.square(b - a_sub @ x).sum())  # noqa: E731
    runs = []
    real = interior.solve_subproblem_interior

    def counting(*args, **kwargs):
        runs.append(args[11])   # the `capped` argument
        return real(*args, **kwargs)

    monkeypatch.setattr(interior, "solve_subproblem_interior", counting)
    rule = lambda x, gap: gap <= 0.5 * rho * residual_sq(x)  # noqa: E731
    for cap_first, expected in ((False, [False, True]), (True, [True])):
        runs.clear()
        report = {}
        x, _, gap, newton = solve_subproblem_np(gram, q, rho, gamma, r, False, np.zeros(1 + maps.size),
                                                residual_sq, 1.0, 1, factor=a_sub, capped=False,
                                                cap_first=cap_first, report=report)
        assert runs == expected and report["capped"] is True and newton > 0
        assert rule(x, gap) and float(x[1:] @ reward[1:]) <= gamma * (1 + 1e-9)
