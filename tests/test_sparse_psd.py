"""The sparse LDL^T proof that lambda_min(S) >= t (conic/sparse_psd.py): it agrees with the dense eigenvalue on
both sides of lambda_min, refuses indefinite matrices, and is chosen only where the slack's graph has little
fill."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import torch

from alm_bench.conic import sparse_psd
from alm_bench.conic.eigen import lambda_min_at_least
from alm_bench.conic.operators import CSROperator


def torus_laplacian(rows: int, cols: int, seed: int = 0) -> sp.csr_matrix:
    """A weighted toroidal grid's Laplacian-like matrix (the G48 class) with a random diagonal."""
    rng = np.random.default_rng(seed)
    n = rows * cols
    index = np.arange(n).reshape(rows, cols)
    right, down = np.roll(index, -1, axis=1), np.roll(index, -1, axis=0)
    i = np.concatenate([index.ravel(), index.ravel()])
    j = np.concatenate([right.ravel(), down.ravel()])
    w = rng.choice([-1.0, 1.0], size=i.size)
    upper = sp.coo_matrix((w, (i, j)), shape=(n, n))
    return (upper + upper.T + sp.diags(rng.uniform(-1.0, 1.0, n))).tocsr()


def operator(matrix: sp.csr_matrix) -> CSROperator:
    matrix = matrix.tocsr()
    return CSROperator(matrix.indptr, matrix.indices, torch.from_numpy(matrix.data), matrix.shape[0])


def test_sparse_proof_agrees_with_the_dense_eigenvalue_on_both_sides() -> None:
    matrix = torus_laplacian(30, 40)
    lam = float(scipy.linalg.eigvalsh(matrix.toarray(), subset_by_index=[0, 0])[0])
    margin = 10 * 1200 * np.finfo(np.float64).eps * 10
    for gap in (1e-3, 1e-6, 1e-9):
        assert sparse_psd.proves_at_least(matrix, lam - gap, margin) is True
        assert sparse_psd.proves_at_least(matrix, lam + gap, margin) is False
    # Through the oracle's entry point, forced either way: the same answers.
    for sparse in (True, False):
        assert lambda_min_at_least(operator(matrix), lam - 1e-8, sparse) == lam - 1e-8
        assert lambda_min_at_least(operator(matrix), lam + 1e-8, sparse) is None


def test_a_residual_above_the_margin_is_no_proof() -> None:
    """With no room between t and the factored shift, the factor's own rounding cannot be covered: undecided,
    never a proof."""
    matrix = torus_laplacian(10, 10, seed=1)
    lam = float(np.linalg.eigvalsh(matrix.toarray())[0])
    assert sparse_psd.proves_at_least(matrix, lam - 1.0, 0.0) is None


def test_the_sparse_route_is_taken_only_where_the_fill_is_small() -> None:
    grid = torus_laplacian(30, 40)
    assert sparse_psd.envelope_per_row(grid) <= 2 * 40 + 1   # RCM keeps a torus within about twice a row
    assert sparse_psd.factor_pays(grid)
    rng = np.random.default_rng(0)
    dense_graph = sp.random(800, 800, density=0.05, random_state=rng)
    dense_graph = (dense_graph + dense_graph.T).tocsr()
    assert not sparse_psd.factor_pays(dense_graph)
    path = sp.diags([np.ones(99), np.full(100, 2.0), np.ones(99)], [-1, 0, 1]).tocsr()
    assert sparse_psd.envelope_per_row(path) == pytest.approx(99 / 100)
