"""EMA-ALM: its update rules in isolation, the AMP penalty gradient, and feasibility on a real training run."""

from __future__ import annotations

import math

import pytest
import torch

from alm_bench.controllers.ema_alm import EMAALM, augmented_term, dual_ascent, ema, next_penalty
from alm_bench.controllers.unconstrained import Unconstrained
from alm_bench.errors import ConfigError
from alm_bench.runners.precision import Precision
from alm_bench.problems.budget import SpectralBudget
from alm_bench.problems.models import small_cnn
from conftest import tiny_problem, train

# ---- pure rules ------------------------------------------------------------------------------


def test_ema_starts_at_first_value_then_smooths():
    assert ema(math.nan, 0.3, 0.9) == 0.3
    assert ema(0.3, 1.3, 0.9) == pytest.approx(0.4)


def test_dual_ascent_is_projected_onto_zero_lambda_max():
    assert dual_ascent(1.0, 0.2, 0.5, 10.0) == pytest.approx(1.1)
    assert dual_ascent(0.05, -1.0, 0.5, 10.0) == 0.0
    assert dual_ascent(9.9, 1.0, 0.5, 10.0) == 10.0


def test_penalty_grows_under_violation_relaxes_under_feasibility_and_stays_in_bounds():
    kw = dict(growth=2.0, decay=0.5, patience=2, relax_patience=3, rho_min=0.5, rho_max=3.0)
    assert next_penalty(1.0, 1, 0, **kw) == 1.0        # not yet persistent
    assert next_penalty(1.0, 2, 0, **kw) == 2.0
    assert next_penalty(2.0, 2, 0, **kw) == 3.0        # capped at rho_max
    assert next_penalty(2.0, 0, 2, **kw) == 2.0        # not yet sustained
    assert next_penalty(2.0, 0, 3, **kw) == 1.0
    assert next_penalty(0.6, 0, 3, **kw) == 0.5        # floored at rho_min


def test_augmented_term_gradient_is_lambda_plus_rho_positive_part():
    for g0, expected in ((0.3, 2.0 + 4.0 * (0.3 + 0.1)), (-0.5, 2.0)):
        g = torch.tensor(g0, requires_grad=True)
        augmented_term(g, lam=2.0, rho=4.0, margin=0.1).backward()
        assert g.grad.item() == pytest.approx(expected)


def test_dual_steps_every_k_steps_or_every_epoch():
    every3 = EMAALM(alpha=1.0, beta=0.0, dual_every=3, margin=0.0)
    for _ in range(5):
        every3.update(0.1, 1.0, None, epoch_end=False)
    assert every3.state.dual_steps == 1 and every3.state.lam == pytest.approx(0.1)
    per_epoch = EMAALM(alpha=1.0, beta=0.0, dual_every="epoch", margin=0.0)
    for step in range(1, 7):
        per_epoch.update(0.1, 1.0, None, epoch_end=step % 4 == 0)
    assert per_epoch.state.dual_steps == 1


def test_rho_grows_only_after_patience_violated_dual_steps():
    c = EMAALM(alpha=0.1, beta=0.0, dual_every=1, margin=0.0, rho_init=1.0, rho_growth=2.0, patience=2)
    rhos = []
    for _ in range(4):
        c.update(0.5, 1.0, None, epoch_end=False)
        rhos.append(c.state.rho)
    assert rhos == [1.0, 2.0, 2.0, 4.0]


def test_state_dict_round_trip():
    c = EMAALM()
    for g in (0.3, 0.1, -0.2, 0.4) * 5:
        c.update(g, 1.0, None, epoch_end=False)
    d = EMAALM()
    d.load_state_dict(c.state_dict())
    assert d.state == c.state


def test_bad_config_is_one_line_naming_the_field():
    with pytest.raises(ConfigError, match="controller.dual_every"):
        EMAALM(dual_every="weekly")
    with pytest.raises(ConfigError, match="controller.rho_init"):
        EMAALM(rho_init=1000.0, rho_max=10.0)


# ---- mixed precision must not distort the penalty ---------------------------------------------


def _penalty_gradients(precision: str, add_after_scaled_backward: bool = False) -> list[torch.Tensor]:
    """Gradients of the constraint terms alone (the objective is multiplied by 0) under `precision`."""
    torch.manual_seed(0)
    model = small_cnn(10, width=8)
    budget = SpectralBudget(bound="absolute", value=-4.0)
    budget.attach(model, seed=0)
    optimizer = torch.optim.AdamW(model.parameters())
    controller = EMAALM(lam_init=0.7, rho_init=3.0)
    prec = Precision(precision, torch.device("cpu"))
    with prec.autocast():
        f = 0.0 * model(torch.randn(4, 3, 16, 16)).float().sum()
    g = budget.violation()
    if add_after_scaled_backward:  # the published reference's order: penalty grads added to scaled grads
        prec.scaler.scale(f).backward(retain_graph=True)
        penalty_grads = torch.autograd.grad(controller.augmented_loss(f.detach(), g), budget.weights)
        for w, pg in zip(budget.weights, penalty_grads):
            w.grad += pg
        prec.scaler.unscale_(optimizer)
    else:
        prec.backward(controller.augmented_loss(f, g), optimizer)
    return [w.grad.clone() for w in budget.weights]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_amp_penalty_gradient_equals_fp32(precision):
    reference = _penalty_gradients("fp32")
    assert all(r.abs().max() > 0 for r in reference)
    for got, want in zip(_penalty_gradients(precision), reference):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_penalty_added_to_scaled_gradients_is_lost_which_the_check_above_would_catch():
    reference = _penalty_gradients("fp32")
    buggy = _penalty_gradients("fp16", add_after_scaled_backward=True)
    ratio = buggy[0].norm() / reference[0].norm()
    assert ratio < 1e-3  # divided by the loss scale (65536): the reference's constraint never held


# ---- a real run: the constraint holds where the baseline breaks it ----------------------------


# The dual ascent makes g cycle about its target -margin: lambda decays while g is feasible, and g drifts up
# until the violation builds lambda again (late in these runs g still swings over ~0.08). Where the last step
# falls in that cycle depends on the trajectory, which floating-point rounding changes (the CPU's kernels, the
# thread count). With the default margin of 0.02 and 300 steps, 2 of 11 trajectories (seeds 0-5, 1 or 2
# threads, one AMD machine) ended violated, up to g = +0.033; with margin 0.1 at 300 steps seed 1 ended at
# 0.515 test accuracy. With margin 0.1 and 500 steps all 10 measured (seeds 0-5 on 1 thread, 0-3 on 2) ended
# at g in [-0.134, -0.075] with test accuracy >= 0.745, while the baseline ended at g >= +0.869.
STEPS, MARGIN = 500, 0.1


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_ema_alm_ends_feasible_where_unconstrained_does_not(tmp_path, seed):
    budget = lambda: SpectralBudget(bound="relative", value=0.0)  # noqa: E731  B = log K at initialisation
    alm, alm_rows = train(tiny_problem(budget=budget(), max_steps=STEPS), EMAALM(margin=MARGIN), tmp_path / "alm",
                          seed=seed)
    base, _ = train(tiny_problem(budget=budget(), max_steps=STEPS), Unconstrained(), tmp_path / "base", seed=seed)
    assert alm["B"] == base["B"]  # paired: same data, same start, same bound
    assert base["g"] > 0.3, "the baseline should break this budget, else the test shows nothing"
    assert alm["g_ema"] <= 0 and alm["g"] <= 0, (alm["g_ema"], alm["g"])
    assert alm["status"] == "converged" and base["status"] == "max_iterations"
    assert max(float(r["g"]) for r in alm_rows) > 0  # it was violated along the way and recovered
    assert alm["test_accuracy"] > 0.5
