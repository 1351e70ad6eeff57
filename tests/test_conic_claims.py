"""What the conic runner reports: the feasible rescaled primal (diag(X) = b problems), and claims of
convergence that rest on a solver's Ritz value are confirmed by a reliable lambda_min before a run stops."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from alm_bench.conic.solvers.mixing import MixingMethod
from alm_bench.conic.eigen import certified_lambda_min, confirmed_lambda_min, lambda_min_at_least
from alm_bench.conic.problems import MaxCut, SDPAProblem, lowest_dual_within, relative_gap
from alm_bench.conic import measure as conic
from alm_bench.conic.solvers import mixing as conic_mixing
from alm_bench.runners import RunContext
from alm_bench.conic.iterate import ConicIterate
from conftest import DATA, run_loop


def small_graph(tmp_path: Path, n: int = 60, seed: int = 0) -> MaxCut:
    rng = np.random.default_rng(seed)
    edges = [(i, j, float(rng.choice([-1.0, 1.0, 2.0]))) for i in range(n) for j in range(i + 1, n)
             if rng.random() < 0.15]
    path = tmp_path / "graph.txt"
    path.write_text(f"{n} {len(edges)}\n" + "".join(f"{i + 1} {j + 1} {w}\n" for i, j, w in edges))
    return MaxCut(str(path), tol=1e-6, rounding_trials=4)


def test_feasible_factor_is_exactly_feasible_and_its_objective_is_exact(tmp_path: Path) -> None:
    problem = small_graph(tmp_path)
    v = torch.randn(problem.n, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    rescaled = problem.feasible_factor(v)
    assert torch.allclose((rescaled * rescaled).sum(dim=1), torch.ones(problem.n, dtype=torch.float64), atol=1e-14, rtol=0)
    # Same directions: each row only rescaled.
    assert torch.allclose(rescaled / rescaled.norm(dim=1, keepdim=True), v / v.norm(dim=1, keepdim=True))
    raw = ConicIterate(objective=0.0, residual=torch.ones(problem.n), y=problem.initial_dual(), lambda_min=0.0,
                       factor=v)
    (_, _, _), (name, objective, residual) = conic.primal_candidates(problem, raw)
    x = rescaled.numpy() @ rescaled.numpy().T
    assert name == "rescaled factor"
    assert objective == pytest.approx(float((problem.c_op.matrix.toarray() * x).sum()), rel=1e-12)
    assert float(residual.abs().max()) <= 1e-14
    # A zero row cannot be rescaled; general SDPs have no such rescaling.
    v[3] = 0.0
    assert problem.feasible_factor(v) is None
    assert SDPAProblem(str(DATA / "theta1.dat-s")).feasible_factor(torch.ones(50, 2, dtype=torch.float64)) is None


def mixing_points(problem: MaxCut, checks: tuple[int, int]) -> list[ConicIterate]:
    """Mixing-method iterates after the given numbers of checks (feasible X, y from its multipliers)."""
    ctx = RunContext(output_dir=None, device=torch.device("cpu"))
    out = []
    for k, it in enumerate(conic_mixing.iterate(problem, MixingMethod(log_every=5), ctx), 1):
        if k in checks:
            out.append(it)
        if k == max(checks):
            return out
    raise AssertionError("unreachable")


@pytest.mark.slow
def test_a_claim_on_an_optimistic_eigenvalue_is_confirmed_before_the_run_stops(tmp_path: Path, monkeypatch) -> None:
    problem = small_graph(tmp_path)
    problem.tol = 1e-4
    early, late = mixing_points(problem, (1, 60))
    exact_early = certified_lambda_min(problem.slack(early.y))
    exact_late = certified_lambda_min(problem.slack(late.y))
    # The solver's eigenvalue is a Ritz value, at most too high, so its bound can only be optimistic. The first
    # iterate's is optimistic just enough to close the gap (an apparent eps_g of 0); the second's is exact.
    true_bound = float(problem.b @ early.y) + problem.n * exact_early
    optimistic = exact_early + (early.objective - true_bound) / problem.n
    iterates = [ConicIterate(early.objective, early.residual, early.y, optimistic, early.factor),
                ConicIterate(late.objective, late.residual, late.y, exact_late, late.factor)]
    monkeypatch.setattr(conic, "solver_iterations", lambda *args: iter(iterates))
    summary, (first, second) = run_loop(problem, MixingMethod(), tmp_path)
    # The claim did not hold: the row carries the confirmed bound and the run went on.
    assert first["lambda_confirmed"] and first["max_eps"] > problem.tol
    assert first["bound"] == pytest.approx(float(problem.b @ early.y) + problem.n * confirmed_lambda_min(
        problem.slack(early.y)), rel=1e-12)
    assert first["bound"] == pytest.approx(true_bound, rel=1e-9)
    assert second["lambda_confirmed"] and second["max_eps"] <= problem.tol
    assert summary["status"] == "converged" and summary["iterations"] == 2


def test_lambda_min_at_least_answers_the_claim_by_a_cholesky(tmp_path: Path) -> None:
    problem = small_graph(tmp_path)
    slack = problem.slack(problem.initial_dual())
    exact = float(np.linalg.eigvalsh(slack.scipy().toarray())[0])
    gap = 1e-7 * slack.gershgorin()
    assert lambda_min_at_least(slack, exact - gap) == exact - gap   # certified exactly at the level asked
    assert lambda_min_at_least(slack, exact + gap) is None          # just above lambda_min: refused


def test_lowest_dual_within_is_the_weakest_bound_that_meets_the_tolerance() -> None:
    for primal, tol in ((-12083.2, 5e-4), (-3191.5, 1e-6), (23.0, 1e-6), (0.0, 1e-3)):
        low = lowest_dual_within(primal, tol)
        assert low <= primal and relative_gap(primal, low) <= tol
        assert relative_gap(primal, low - 1e-9 * (1 + abs(primal))) > tol


def test_a_true_claim_is_confirmed_by_the_cholesky_test_alone(tmp_path: Path, monkeypatch) -> None:
    """Up to CHOLESKY_LIMIT a claim that holds costs one Cholesky, no eigendecomposition; the confirmed lambda
    is a certified lower bound, at most the exact one, within the tolerance's threshold."""
    problem = small_graph(tmp_path)
    problem.tol = 1e-4
    (late,) = mixing_points(problem, (60,))
    exact = certified_lambda_min(problem.slack(late.y))
    claim = ConicIterate(late.objective, late.residual, late.y, exact + 1e-12, late.factor)
    candidates = conic.primal_candidates(problem, claim)

    def no_eigensolver(*args, **kwargs):
        raise AssertionError("the exact lambda_min was computed for a claim that holds")

    monkeypatch.setattr(conic, "confirmed_lambda_min", no_eigensolver)
    confirmed = conic.confirm_claim(problem, claim, claim.lambda_min, candidates, float(problem.b.norm()))
    threshold = conic.claim_threshold(problem, claim, candidates, float(problem.b.norm()))
    assert threshold <= confirmed <= exact
    metrics = conic.evaluate(problem, claim, confirmed, candidates, float(problem.b.norm()))
    assert metrics["max_eps"] <= problem.tol


def test_a_claim_is_tested_first_where_the_solvers_error_estimate_puts_lambda_min(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    """A solver that knows how far its lambda may lie above lambda_min (lambda_error) has its claim tested that
    far below first: the threshold alone for the mixing method's loose estimate (inf), one Cholesky; 2x the
    error below for a Ritz value, then the threshold. Without an estimate, next to the claimed value first."""
    problem = small_graph(tmp_path)
    problem.tol = 1e-4
    (late,) = mixing_points(problem, (60,))
    exact = certified_lambda_min(problem.slack(late.y))
    tested = []
    real_test = conic.lambda_min_at_least

    def counting(slack, t, *args):
        tested.append(t)
        return real_test(slack, t, *args)

    monkeypatch.setattr(conic, "lambda_min_at_least", counting)
    b_norm = float(problem.b.norm())
    claim = ConicIterate(late.objective, late.residual, late.y, exact, late.factor)
    candidates = conic.primal_candidates(problem, claim)
    threshold = conic.claim_threshold(problem, claim, candidates, b_norm)   # does not depend on lambda
    assert threshold < exact
    margin = exact - threshold
    # The claimed value errs by a fifth of the way to the threshold (far more than a thousandth).
    claim.lambda_min = claimed = min(exact + 0.2 * margin, 0.0)
    for error, expected in ((math.inf, [threshold]),
                            (0.15 * margin, [claimed - 0.3 * margin]),
                            (None, [claimed + conic.CLAIM_TEST_SHARES[0] * (threshold - claimed)])):
        tested.clear()
        claim.lambda_error = error
        confirmed = conic.confirm_claim(problem, claim, claim.lambda_min, candidates, b_norm)
        assert threshold <= confirmed <= exact
        assert tested[0] == pytest.approx(expected[0], rel=1e-12)
        if error is not None:   # the estimate's first test holds: one Cholesky
            assert len(tested) == 1
    assert conic.claim_tests(-1.0, -2.0, 0.1) == [pytest.approx(-1.2), -2.0]
    assert conic.claim_tests(-1.0, -2.0, 0.0) == [pytest.approx(-1.001), -2.0]
