"""The block LOBPCG eigen-oracle against dense LAPACK on a Max-Cut slack with a clustered bottom spectrum."""

from __future__ import annotations

import unittest.mock as mock

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch

from alm_bench.conic.eigen import BlockLOBPCG
from alm_bench.conic.operators import CSROperator
from conftest import DATA, run_loop


def clustered_slack(n: int = 400, seed: int = 0) -> tuple[CSROperator, np.ndarray]:
    """A sparse symmetric matrix whose 5 smallest eigenvalues lie within 1e-3 (as near an SDP optimum)."""
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.02, random_state=rng)
    a = (a + a.T).tocsr()
    a = a + sp.diags(rng.uniform(1.0, 2.0, n))
    q, _ = np.linalg.qr(rng.standard_normal((n, 5)))
    # Q spans an invariant subspace with eigenvalues 1e-3 apart, 1 below the rest of the spectrum.
    project = np.eye(n) - q @ q.T
    bottom = np.linalg.eigvalsh(a.toarray())[0] - 1.0 + 1e-3 * np.arange(5)
    dense = project @ a.toarray() @ project + q @ np.diag(bottom) @ q.T
    dense = (dense + dense.T) / 2
    matrix = sp.csr_matrix(dense)
    operator = CSROperator(matrix.indptr, matrix.indices, torch.from_numpy(matrix.data), n)
    return operator, scipy.linalg.eigvalsh(dense)


def test_lobpcg_matches_dense_eigenvalues_and_never_undershoots() -> None:
    slack, exact = clustered_slack()
    oracle = BlockLOBPCG(slack.n, torch.device("cpu"), seed=0)
    scale = slack.gershgorin()
    found = oracle(slack, wanted=6, block_size=12, tol=1e-8 * scale)
    assert found.converged and oracle.fallbacks == 0
    assert found.residual <= 1e-8 * scale
    values = found.values.numpy()
    # Ritz values are Rayleigh quotients: never below the true eigenvalue, above it by ~ residual^2 / gap.
    assert np.all(values >= exact[:6] - 1e-10 * scale)
    np.testing.assert_allclose(values, exact[:6], rtol=0, atol=1e-9 * scale)
    vectors = found.vectors.numpy()
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(6), atol=1e-10)


def test_trailing_pairs_meet_their_own_tolerance() -> None:
    """BALA needs lambda_1 to `tol` and the other pairs only to a looser `trailing_tol`: each is met, and the
    looser trailing tolerance takes fewer iterations than converging every pair to `tol` (24 vs 36 here)."""
    slack, exact = clustered_slack()
    scale = slack.gershgorin()
    op = slack.scipy()
    strict = BlockLOBPCG(slack.n, torch.device("cpu"), seed=0)(slack, wanted=6, block_size=12, tol=1e-8 * scale)
    loose = BlockLOBPCG(slack.n, torch.device("cpu"), seed=0)(slack, wanted=6, block_size=12, tol=1e-8 * scale,
                                                             trailing_tol=1e-4 * scale)
    assert loose.converged and loose.iterations < strict.iterations
    vectors, values = loose.vectors.numpy(), loose.values.numpy()
    residuals = np.linalg.norm(op @ vectors - vectors * values, axis=0)
    assert residuals[0] <= 1e-8 * scale and residuals[1:].max() <= 1e-4 * scale
    assert abs(values[0] - exact[0]) <= 1e-9 * scale


def test_warm_start_at_a_nearby_matrix_needs_fewer_iterations() -> None:
    slack, _ = clustered_slack()
    oracle = BlockLOBPCG(slack.n, torch.device("cpu"), seed=0)
    scale = slack.gershgorin()
    cold = oracle(slack, wanted=6, block_size=12, tol=1e-7 * scale)
    rng = np.random.default_rng(1)  # a small change of y moves the diagonal
    nearby = slack.scipy() + sp.diags(1e-4 * rng.standard_normal(slack.n))
    nearby = sp.csr_matrix(nearby)
    warm = oracle(CSROperator(nearby.indptr, nearby.indices, torch.from_numpy(nearby.data), slack.n), wanted=6, block_size=12, tol=1e-7 * scale)
    assert warm.converged and cold.converged
    assert warm.iterations < cold.iterations / 2


def test_unconverged_lobpcg_falls_back_to_dense_and_counts_it() -> None:
    slack, exact = clustered_slack()
    oracle = BlockLOBPCG(slack.n, torch.device("cpu"), max_iter=1, seed=0)
    found = oracle(slack, wanted=3, block_size=8, tol=1e-12)
    assert oracle.fallbacks == 1 and found.converged
    np.testing.assert_allclose(found.values.numpy(), exact[:3], rtol=0, atol=1e-10 * abs(exact).max())


def test_arpack_fallback_matches_lapack_on_a_clustered_spectrum(monkeypatch) -> None:
    """Above DENSE_LIMIT both reliable routes are ARPACK's: forced here at n = 400 (smallest_eigenpairs reads
    the module's limit; certified_lambda_min takes it as an argument, bound when the module was imported),
    and counted, so that the dense route cannot stand in for it unnoticed."""
    import alm_bench.conic.eigen as eo

    slack, exact = clustered_slack()
    real_eigsh, calls = eo.spla.eigsh, []

    def counting_eigsh(*args, **kwargs):
        calls.append(kwargs.get("k"))
        return real_eigsh(*args, **kwargs)

    monkeypatch.setattr(eo.spla, "eigsh", counting_eigsh)
    monkeypatch.setattr(eo, "DENSE_LIMIT", 10)
    values, vectors = eo.smallest_eigenpairs(slack, 5)
    assert calls == [5], "smallest_eigenpairs did not go through ARPACK"
    np.testing.assert_allclose(values, exact[:5], rtol=0, atol=1e-9)
    residuals = np.linalg.norm(slack.scipy() @ vectors - vectors * values, axis=0)
    assert residuals.max() <= 1e-8
    bound = eo.certified_lambda_min(slack, dense_limit=10)
    assert calls == [5, 1], "certified_lambda_min did not go through ARPACK"
    assert bound <= exact[0] <= bound + 1e-8


def test_a_claim_is_confirmed_by_the_exact_lambda_min_on_either_route(monkeypatch) -> None:
    """confirmed_lambda_min: dense LAPACK at small orders (no ARPACK call); above CONFIRM_DENSE_LIMIT ARPACK
    with its bounded restart budget, then dense when that runs out. A lower bound within 1e-8 either way."""
    import scipy.sparse.linalg as spla

    import alm_bench.conic.eigen as eo

    slack, exact = clustered_slack()
    budgets = []

    def no_convergence(*args, **kwargs):
        budgets.append(kwargs["maxiter"])
        raise spla.ArpackNoConvergence("no convergence", np.zeros(0), np.zeros((0, 0)))

    monkeypatch.setattr(eo.spla, "eigsh", no_convergence)
    lam = eo.confirmed_lambda_min(slack)   # n = 400
    assert budgets == [] and lam <= exact[0] <= lam + 1e-8
    monkeypatch.setattr(eo, "CONFIRM_DENSE_LIMIT", 10)
    lam = eo.confirmed_lambda_min(slack)
    assert budgets == [eo.CONFIRM_RESTARTS] and lam <= exact[0] <= lam + 1e-8


def test_an_oracle_that_never_converges_stops_the_run_with_its_trace(monkeypatch, tmp_path) -> None:
    import scipy.sparse.linalg as spla

    import alm_bench.conic.eigen as eo
    from alm_bench.conic.solvers.bala import BALA
    from alm_bench.conic.problems import MaxCut

    real_eigsh, calls = spla.eigsh, []

    def never(*args, **kwargs):  # ARPACK works for the first few fallbacks, then never again
        calls.append(1)
        if len(calls) <= 3:
            return real_eigsh(*args, **kwargs)
        raise spla.ArpackNoConvergence("no convergence", np.zeros(0), np.zeros((0, 0)))

    monkeypatch.setattr(eo, "DENSE_LIMIT", 10)
    monkeypatch.setattr(eo, "DENSE_FALLBACK_LIMIT", 10)
    monkeypatch.setattr(eo.spla, "eigsh", never)

    problem = MaxCut(str(DATA / "G14.txt"), tol=1e-9, rounding_trials=1)
    # eig_max_iter = 2: LOBPCG hands most calls to the fallback
    summary, rows = run_loop(problem, BALA(eig_max_iter=2, warm_start=False), tmp_path)   # its iterations' oracle
    assert summary["status"] == "failed" and "eigen-oracle did not converge" in summary["message"]
    assert "sdp_bound" not in summary and "cut_value" not in summary
    assert summary["iterations"] == len(rows) >= 1 and len(calls) == 4


def near_zero_slack() -> tuple[CSROperator, np.ndarray]:
    """clustered_slack shifted so that lambda_min = 0, as at an SDP optimum (where ARPACK's relative tolerance
    means round-off), and its exact eigenvalues."""
    slack, exact = clustered_slack()
    shifted = (slack.scipy() - exact[0] * sp.identity(400)).tocsr()
    return CSROperator(shifted.indptr, shifted.indices, torch.from_numpy(shifted.data), 400), exact - exact[0]


def counting_eigsh(products: list):
    """scipy's eigsh with every matrix-vector product appended to `products`."""
    import scipy.sparse.linalg as spla

    real_eigsh = spla.eigsh

    def eigsh(matrix, **kwargs):
        operator = spla.aslinearoperator(matrix)
        counted = spla.LinearOperator(matrix.shape, matvec=lambda v: products.append(1) or operator.matvec(v),
                                      dtype=np.float64)
        return real_eigsh(counted, **kwargs)
    return eigsh


def test_arpack_to_an_absolute_residual_still_bounds_lambda_min_from_below() -> None:
    """residual_tol: ARPACK on S + sigma I to a residual that a claim's margin allows, for a lambda_min near 0
    (where its own relative tolerance meant round-off). The result stays a lower bound, within residual_tol,
    and costs fewer products than the run to round-off."""
    import alm_bench.conic.eigen as eo

    near_zero, exact = near_zero_slack()
    products = []
    with mock.patch.object(eo.spla, "eigsh", counting_eigsh(products)):
        for residual_tol in (1e-4, 1e-7):
            products.clear()
            bound = eo.certified_lambda_min(near_zero, dense_limit=0, residual_tol=residual_tol)
            assert bound <= exact[0] <= bound + 2 * residual_tol + 1e-12
            loose = len(products)
        products.clear()
        full = eo.certified_lambda_min(near_zero, dense_limit=0, tol=1e-12)
        assert full <= exact[0] <= full + 1e-8
        assert loose < len(products)


def test_the_oracles_arpack_fallback_stops_at_the_calls_own_tolerance(monkeypatch) -> None:
    """Above DENSE_LIMIT an unconverged LOBPCG hands over to ARPACK at the tolerance the oracle was called with
    (absolute, on S + sigma I), not ARPACK's relative 1e-10, which near lambda_min = 0 meant round-off, no
    convergence, and a dense eigh (50 s a call on G60). The pairs meet that residual, the values lie within
    it of the exact ones (never below), and it takes fewer products than the run to 1e-10."""
    import alm_bench.conic.eigen as eo

    near_zero, exact = near_zero_slack()
    products = []
    monkeypatch.setattr(eo, "DENSE_LIMIT", 10)
    monkeypatch.setattr(eo.spla, "eigsh", counting_eigsh(products))
    tol = 1e-6 * near_zero.gershgorin()
    oracle = BlockLOBPCG(400, torch.device("cpu"), max_iter=1, seed=0)
    found = oracle(near_zero, wanted=3, block_size=8, tol=tol)
    assert oracle.fallbacks == 1 and found.converged and products
    values, vectors = found.values.numpy(), found.vectors.numpy()
    residuals = np.linalg.norm(near_zero.scipy() @ vectors - vectors * values, axis=0)
    assert residuals.max() <= tol
    assert np.all(values >= exact[:3] - 1e-12) and np.all(values <= exact[:3] + tol)
    at_tol = len(products)
    products.clear()
    eo.smallest_eigenpairs(near_zero, 4)   # ARPACK's relative 1e-10
    assert at_tol < len(products)
