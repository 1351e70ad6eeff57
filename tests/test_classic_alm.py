"""Classic ALM: the pure update rules, the controller object, and solves to published optima."""

from __future__ import annotations

import pytest
import torch

from alm_bench.controllers.classic_alm import (
    ClassicALM,
    algencan_initial_penalty,
    augmented_lagrangian,
    multiplier_update,
    next_penalty,
    progress_measure,
)
from alm_bench.errors import ConfigError
from alm_bench.problems.hock_schittkowski import HS, HockSchittkowski
from alm_bench.problems.quadratic import QuadraticProgram
from conftest import DATA, run_loop

T = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731


# ---- pure rules ----------------------------------------------------------------------------------

def test_augmented_lagrangian_matches_phr_formula():
    f, h, g = T(2.0), T(0.5, -1.0), T(0.3, -2.0)
    lam, mu, rho = T(1.0, 2.0), T(0.5, 1.0), 4.0
    expected = 2.0 + (0.5 - 2.0) + 2.0 * (0.25 + 1.0) + ((0.5 + 1.2) ** 2 - 0.25 + 0 - 1.0) / 8
    assert float(augmented_lagrangian(f, h, g, lam, mu, rho)) == pytest.approx(expected, rel=1e-14)


def test_inequality_term_gradient_is_first_order_multiplier_estimate():
    x = T(0.7, -0.2).requires_grad_(True)
    g = torch.stack([x[0] ** 2 - 1.0, x[0] + x[1]])
    mu, rho = T(0.3, 0.0), 5.0
    value = augmented_lagrangian(x.new_zeros(()), x.new_zeros(0), g, x.new_zeros(0), mu, rho)
    (grad,) = torch.autograd.grad(value, x)
    weights = (mu + rho * g.detach()).clamp(min=0)  # max(0, mu + rho g)
    jac = torch.stack([torch.stack([2 * x[0].detach(), T(0.0)[0]]), T(1.0, 1.0)])
    assert torch.allclose(grad, jac.T @ weights, atol=1e-14)


def test_multiplier_update_projects_and_safeguards():
    lam, mu = multiplier_update(T(1.0), T(-5.0, 0.5), T(0.0), T(1.0, 1.0), rho=2.0, bound=2.5)
    assert lam.tolist() == [2.0]
    assert mu.tolist() == [0.0, 2.0]
    lam, _ = multiplier_update(T(10.0), T(), T(0.0), T(), rho=1.0, bound=2.5)
    assert lam.tolist() == [2.5]


def test_progress_measure_is_zero_iff_feasible_and_complementary():
    assert progress_measure(T(0.0), T(-1.0), T(0.0), 10.0) == 0.0        # inactive, mu = 0
    assert progress_measure(T(), T(0.0), T(3.0), 10.0) == 0.0            # active, mu > 0
    assert progress_measure(T(), T(-1.0), T(3.0), 10.0) == pytest.approx(0.3)  # inactive but mu > 0
    assert progress_measure(T(0.2), T(), T(), 10.0) == pytest.approx(0.2)


def test_penalty_grows_only_when_progress_stalls_and_never_once_feasible():
    kw = dict(ratio=0.5, growth=10.0, rho_max=1e3, feasibility_tol=1e-8)
    assert next_penalty(1.0, 0.6, 1.0, **kw) == 10.0      # did not halve
    assert next_penalty(1.0, 0.4, 1.0, **kw) == 1.0       # halved
    assert next_penalty(1.0, 1e-9, 1e-9, **kw) == 1.0     # feasible: stalled inner solves are no reason
    assert next_penalty(500.0, 0.9, 1.0, **kw) == 1e3     # capped


def test_algencan_initial_penalty():
    assert algencan_initial_penalty(0.0, T(), T(3.0)) == pytest.approx(10 / 4.5)
    assert algencan_initial_penalty(100.0, T(0.1), T()) == pytest.approx(1000.0)
    assert algencan_initial_penalty(1e20, T(), T()) == 1e8


@pytest.mark.parametrize("kwargs, field", [
    ({"rho": -1.0}, "controller.rho"), ({"rho": 0.0}, "controller.rho"),
    ({"feasibility_tol": -1e-6}, "controller.feasibility_tol"),
    ({"stationarity_tol": 0.0}, "controller.stationarity_tol"),
    ({"rho_growth": 1.0}, "controller.rho_growth"),
    ({"progress_ratio": 1.5}, "controller.progress_ratio"),
    ({"inner_optimizer": {"name": "NoSuchOptimizer"}}, "controller.inner_optimizer.name"),
])
def test_invalid_settings_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        ClassicALM(**kwargs)


def test_state_dict_round_trip_continues_identically():
    h, g = T(0.3), T(0.2, -1.0)
    a = ClassicALM()
    a.start(T(1.0)[0], h, g)
    a.step(h, g)
    b = ClassicALM()
    b.load_state_dict(a.state_dict())
    for _ in range(3):
        a.step(h * 0.9, g * 0.9)
        b.step(h * 0.9, g * 0.9)
    sa, sb = a.state_dict(), b.state_dict()
    assert torch.equal(sa["lam"], sb["lam"]) and torch.equal(sa["mu"], sb["mu"])
    assert (sa["rho"], sa["inner_tol"], sa["outer_step"]) == (sb["rho"], sb["inner_tol"], sb["outer_step"])
    assert sa["outer_step"] == 4


# ---- solves --------------------------------------------------------------------------------------

def test_seed_toy_reaches_x_equals_3(tmp_path):
    summary, rows = run_loop(QuadraticProgram("toy"), ClassicALM(), tmp_path)
    assert summary["status"] == "converged"
    assert abs(summary["x"][0] - 3.0) < 1e-4
    assert summary["max_violation"] < 1e-6
    assert summary["multipliers"]["ineq"][0] == pytest.approx(6.0, rel=1e-6)  # mu* = 2 x* = 6
    assert len(rows) == summary["iterations"]


# hs100 takes ~1.2 s (7 variables, 4 nonlinear inequalities): with the slow tests
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "hs100" else n for n in sorted(HS)])
def test_hock_schittkowski_reaches_published_optimum(name, tmp_path):
    problem = HockSchittkowski(name)
    summary, _ = run_loop(problem, ClassicALM(), tmp_path)
    f_star = problem.definition.f_star
    assert summary["status"] == "converged"
    assert abs(summary["objective"] - f_star) <= 1e-6 * abs(f_star)
    assert summary["max_violation"] <= 1e-8
    assert summary["x"] == pytest.approx(list(problem.definition.x_star), abs=1e-4)


def test_hs071_multipliers_match_published_values(tmp_path):
    summary, _ = run_loop(HockSchittkowski("hs071"), ClassicALM(), tmp_path)
    # published: lambda_h = 0.1614686 for sum x^2 = 40 (sign: our h = sum x^2 - 40, min form gives -0.16...)
    assert abs(summary["multipliers"]["eq"][0]) == pytest.approx(0.1614686, rel=1e-5)
    assert summary["multipliers"]["ineq"][0] == pytest.approx(0.5522937, rel=1e-5)


def test_random_qp_matches_its_kkt_reference(tmp_path):
    problem = QuadraticProgram("random", dim=40, n_eq=8, n_ineq=16, condition=100.0, instance_seed=3)
    summary, _ = run_loop(problem, ClassicALM(), tmp_path)
    assert summary["status"] == "converged"
    assert summary["x_error"] < 1e-6
    assert summary["objective"] == pytest.approx(problem.f_star, rel=1e-8)


def test_random_qp_reference_satisfies_kkt():
    """The reference is built from KKT conditions; check them independently of any solver."""
    p = QuadraticProgram("random", dim=12, n_eq=3, n_ineq=6, instance_seed=1)
    x = p.x_star
    assert torch.allclose(p.A @ x, p.b, atol=1e-12)
    slack = p.h - p.G @ x
    assert (slack >= -1e-12).all() and int((slack.abs() < 1e-12).sum()) == 3
    active = slack.abs() < 1e-12
    # stationarity with free lambda and mu >= 0 supported on the active set
    lhs = torch.cat([p.A.T, p.G[active].T], dim=1)
    multipliers = torch.linalg.lstsq(lhs, -(p.Q @ x + p.c).unsqueeze(1)).solution.squeeze(1)
    assert torch.allclose(lhs @ multipliers, -(p.Q @ x + p.c), atol=1e-10)
    assert (multipliers[3:] > 0).all()


def test_any_torch_optimizer_can_be_the_inner_solver(tmp_path):
    # A fixed-step first-order solver is stable only while the curvature 2 + rho stays below 2/lr: cap rho.
    controller = ClassicALM(inner_optimizer={"name": "SGD", "lr": 0.05, "momentum": 0.5}, rho_max=10.0, feasibility_tol=1e-6,
                            newton_polish=False, max_inner_steps=3000, max_outer_iterations=60)
    summary, _ = run_loop(QuadraticProgram("toy"), controller, tmp_path)
    assert summary["status"] == "converged"
    assert abs(summary["x"][0] - 3.0) < 1e-4


def test_time_limit_stops_smooth_and_conic_runs_after_the_iteration_that_passes_it():
    from alm_bench.conic.problems import MaxCut

    smooth, _ = run_loop(HockSchittkowski("hs071"), ClassicALM(time_limit_s=1e-9))
    assert smooth["iterations"] == 1 and "time limit" in smooth["message"]
    conic, _ = run_loop(MaxCut(str(DATA / "G14.txt"), tol=1e-9, rounding_trials=1), ClassicALM(time_limit_s=1e-9))
    assert conic["iterations"] == 1 and "time limit" in conic["message"]


def test_another_inner_optimizer_gets_only_its_own_options() -> None:
    """controller.inner_optimizer.name=Adam lr=0.01 (the README's example): L-BFGS's defaults (max_iter,
    line_search_fn) do not follow to Adam; LBFGS still gets them when nothing is set."""
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    adam = ClassicALM(inner_optimizer={"name": "Adam", "lr": 0.01, "max_iter": None, "line_search_fn": None})
    optimizer = adam.make_inner_optimizer([x])
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == 0.01
    lbfgs = ClassicALM(inner_optimizer={"name": "LBFGS", "lr": None, "max_iter": None, "line_search_fn": None})
    optimizer = lbfgs.make_inner_optimizer([x])
    assert isinstance(optimizer, torch.optim.LBFGS)
    assert (optimizer.defaults["lr"], optimizer.defaults["max_iter"], optimizer.defaults["line_search_fn"]) == \
        (1.0, 100, "strong_wolfe")
    assert ClassicALM().inner_optimizer == lbfgs.inner_optimizer
    with pytest.raises(ConfigError, match="Adam rejected its options"):
        ClassicALM(inner_optimizer={"name": "Adam", "max_iter": 5}).make_inner_optimizer([x])   # set by the user
