"""Seed 000's AugLagLR test, as written there (only the import line changed), plus the API's contract."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch.nn import Parameter
from torch.optim import Adam

from alm_bench.auglag import AugLagLossCalculator, AugLagLR, AugLagLRConfig, InnerReason, OuterReason


@pytest.mark.slow
def test_solve_auglag():
    """
    Test that `AugLagLR` can solve the constrained optimization problem.

        min x² s.t. x > 3

    The solution being that x is approximately 3
    """
    x = Parameter(torch.zeros((), requires_grad=True))
    group_lr = {"x": 0.1}
    parameter_list = [{"params": x, "name": "x", "lr": group_lr["x"]}]

    optimizer = Adam(parameter_list)
    scheduler = AugLagLR(
        config=AugLagLRConfig(
            lr_update_lag=1,
            lr_update_lag_best=100,
            lr_init_dict=group_lr,
            aggregation_period=1,
            lr_factor=0.5,
            penalty_progress_rate=1.1,
            safety_rho=100,
            safety_alpha=100,
            max_lr_down=10,
            inner_early_stopping_patience=10,
            max_outer_steps=100000,
            patience_penalty_reached=10,
            patience_max_rho=10,
            penalty_tolerance=1e-5,
            max_inner_steps=10,
        )
    )

    auglag_loss = AugLagLossCalculator(init_alpha=0.0, init_rho=1.0)
    step_counter = 0
    max_iter = 10000
    constraint = torch.inf
    for _ in range(max_iter):
        optimizer.zero_grad()
        loss = x**2
        constraint = torch.max(3 - x, torch.zeros(()))
        auglag_loss_tensor = auglag_loss(loss, constraint)
        auglag_loss_tensor.backward()
        optimizer.step()
        converged = scheduler.step(
            optimizer=optimizer, loss=auglag_loss, loss_value=loss, lagrangian_penalty=constraint
        )
        if converged:
            break

        step_counter += 1

    assert constraint < 1e-3
    assert torch.isclose(x, torch.tensor(3.0), atol=0.1)


# ---- causica's own test suite (microsoft/causica, test/training/test_auglag.py), in our words ------------
# The same three checks: a long run on random losses and penalties with one optimizer and with a list of them,
# and the x >= 3 solve, which must stop for the reasons causica's test asserts. causica's names are aliases
# of ours (AugLagInnerConvergenceReason is InnerReason, ...), so its file runs with only the import changed.

def causica_test_config(lr_init: dict[str, float], **changes) -> AugLagLRConfig:
    """The settings causica's tests use: caps far below the initial rho, ten-step inner loops."""
    settings = dict(lr_update_lag=1, lr_update_lag_best=100, lr_init_dict=lr_init, aggregation_period=1,
                    lr_factor=0.5, penalty_progress_rate=1.1, safety_rho=1e-3, safety_alpha=1e-3, max_lr_down=10,
                    inner_early_stopping_patience=10, max_outer_steps=10, patience_penalty_reached=10,
                    patience_max_rho=10, penalty_tolerance=1e-3, max_inner_steps=10)
    return AugLagLRConfig(**{**settings, **changes})


def feed_random_values(scheduler, optimizer, calc, steps: int = 10_000) -> list:
    draws = torch.Generator().manual_seed(1337)
    return [scheduler.step(optimizer=optimizer, loss=calc, loss_value=torch.rand((), generator=draws),
                           lagrangian_penalty=torch.rand((), generator=draws)) for _ in range(steps)]


def test_random_losses_with_one_optimizer_run_to_the_outer_budget():
    lr_init = {"param1": 0.1}
    groups = [{"params": torch.randn(3, 2).requires_grad_(), "name": n, "lr": lr} for n, lr in lr_init.items()]
    optimizer, calc = Adam(groups), AugLagLossCalculator(init_alpha=0.0, init_rho=1.0)
    results = feed_random_values(AugLagLR(causica_test_config(lr_init)), optimizer, calc)
    first = next(k for k, r in enumerate(results) if r.converged)
    # ten outer updates of ten steps each, then the eleventh inner loop ends on the outer budget (as causica's)
    assert first == 109 and all(r.converged for r in results[first:])
    assert results[first].reasons == (InnerReason.MAX_INNER_STEPS_REACHED, OuterReason.MAX_OUTER_STEPS_REACHED)
    assert float(calc.rho) == float(calc.alpha) == float(torch.tensor(1e-3))   # both capped (in float32)
    assert optimizer.param_groups[0]["lr"] == 0.1   # reset each inner loop; no cut (lr_update_lag_best = 100)


def test_random_losses_with_a_list_of_optimizers_step_every_group():
    lr_init = {"param1": 0.1, "param2": 0.1}
    tensors = {"param1": torch.randn(3, 2).requires_grad_(), "param2": torch.randn(5, 3, 6).requires_grad_()}
    groups = [{"params": tensors[n], "name": n, "lr": lr} for n, lr in lr_init.items()]
    optimizers = [Adam(groups[:1]), Adam(groups[1:])]
    results = feed_random_values(AugLagLR(causica_test_config(lr_init)), optimizers, AugLagLossCalculator(0.0, 1.0))
    first = next(k for k, r in enumerate(results) if r.converged)
    assert first == 109 and results[-1].reasons.outer_convergence_reason is OuterReason.MAX_OUTER_STEPS_REACHED
    assert [opt.param_groups[0]["lr"] for opt in optimizers] == [0.1, 0.1]


def test_x_at_least_3_stops_on_the_penalty_tolerance_as_causica_asserts():
    """min x^2 s.t. x >= 3 with Adam: the run must end because the penalty stayed below its tolerance, not
    because rho sat at its cap (the count causica keeps only starts when rho begins above the cap)."""
    from alm_bench.auglag import (AugLagConvergenceReasonTuple, AugLagInnerConvergenceReason,
                                  AugLagOuterConvergenceReason)

    x = Parameter(torch.zeros(()))
    optimizer = Adam([{"params": x, "name": "x", "lr": 0.1}])
    scheduler = AugLagLR(causica_test_config({"x": 0.1}, safety_rho=100, safety_alpha=100, max_outer_steps=100_000,
                                             penalty_tolerance=1e-5))
    calc = AugLagLossCalculator(init_alpha=0.0, init_rho=1.0)
    for step in range(1, 10_001):
        optimizer.zero_grad()
        objective, penalty = x**2, torch.clamp(3 - x, min=0)
        calc(objective, penalty).backward()
        optimizer.step()
        converged, reasons = scheduler.step(optimizer=optimizer, loss=calc, loss_value=objective,
                                            lagrangian_penalty=penalty)
        if converged:
            break
    assert converged and reasons == AugLagConvergenceReasonTuple(
        AugLagInnerConvergenceReason.MAX_INNER_STEPS_REACHED, AugLagOuterConvergenceReason.PENALTY_TOLERANCE_REACHED)
    assert float(penalty) < 1e-3 and abs(float(x) - 3.0) <= 0.1   # causica's two assertions on the solution
    # causica's own scheduler, run on the same inputs (outside this repository), stops at this step and point
    assert step == 320 and float(x) == pytest.approx(3.0605183, abs=1e-6) and scheduler.outer_step == 31


def test_the_max_rho_patience_counts_updates_that_start_above_the_cap():
    scheduler = AugLagLR(AugLagLRConfig(max_inner_steps=1, aggregation_period=1, safety_rho=1e-3, patience_max_rho=1,
                                        max_outer_steps=100, patience_penalty_reached=100))
    x = Parameter(torch.zeros(()))
    calc = AugLagLossCalculator(init_alpha=0.0, init_rho=1.0)   # rho above its cap of 1e-3
    results = [scheduler.step(optimizer=Adam([x]), loss=calc, loss_value=torch.tensor(1.0),
                              lagrangian_penalty=torch.tensor(0.5)) for _ in range(3)]
    assert [r.converged for r in results] == [False, True, True]
    assert results[1].reasons.outer_convergence_reason is OuterReason.PATIENCE_MAX_RHO_REACHED
    assert float(calc.rho) == pytest.approx(1e-3)   # clipped to the cap at the first update


# ---- the rest of the API's contract -------------------------------------------------------------

def test_step_result_is_falsy_until_converged_and_unpacks_to_reasons():
    x = Parameter(torch.zeros(()))
    optimizer = Adam([{"params": x, "name": "x", "lr": 0.1}])
    scheduler = AugLagLR(AugLagLRConfig(max_inner_steps=2, max_outer_steps=1, aggregation_period=1))
    calc = AugLagLossCalculator(init_alpha=0.0, init_rho=1.0)
    results = [scheduler.step(optimizer=optimizer, loss=calc, loss_value=torch.tensor(1.0),
                              lagrangian_penalty=torch.tensor(0.5)) for _ in range(4)]
    assert [bool(r) for r in results] == [False, False, False, True]  # 2 inner steps, 1 outer update, 2 more
    converged, (inner, outer) = results[-1]
    assert converged is True and inner is InnerReason.MAX_INNER_STEPS_REACHED
    assert outer is OuterReason.MAX_OUTER_STEPS_REACHED
    assert float(calc.alpha) == 0.5  # the one outer update accepted: alpha += rho * penalty


def test_disable_zeroes_the_multipliers_and_enable_restores_them():
    calc = AugLagLossCalculator(init_alpha=2.0, init_rho=3.0)
    scheduler = AugLagLR(AugLagLRConfig())
    scheduler.disable(calc)
    assert scheduler.disabled and float(calc.alpha) == 0.0 and float(calc.rho) == 0.0
    x = Parameter(torch.zeros(()))
    assert not scheduler.step(optimizer=Adam([x]), loss=calc, loss_value=torch.tensor(1.0),
                              lagrangian_penalty=torch.tensor(1.0))
    scheduler.enable(calc)
    assert not scheduler.disabled and float(calc.alpha) == 2.0 and float(calc.rho) == 3.0


def test_negative_penalty_is_rejected():
    x = Parameter(torch.zeros(()))
    with pytest.raises(ValueError, match="lagrangian_penalty"):
        AugLagLR(AugLagLRConfig()).step(optimizer=Adam([x]), loss=AugLagLossCalculator(0.0, 1.0),
                                        loss_value=torch.tensor(1.0), lagrangian_penalty=torch.tensor(-1.0))


def test_lr_is_cut_on_a_stall_and_reset_for_the_next_inner_loop():
    x = Parameter(torch.zeros(()))
    optimizer = Adam([{"params": x, "name": "x", "lr": 1.0}])
    scheduler = AugLagLR(AugLagLRConfig(lr_init_dict={"x": 1.0}, aggregation_period=1, lr_update_lag=2,
                                        lr_update_lag_best=2, lr_factor=0.5, max_inner_steps=5, max_lr_down=10))
    calc = AugLagLossCalculator(0.0, 1.0)
    lrs = []
    for _ in range(6):  # a constant loss never improves on its first value: a stall
        scheduler.step(optimizer=optimizer, loss=calc, loss_value=torch.tensor(1.0), lagrangian_penalty=0.1)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 1.0, 1.0]  # cut at step 3 (lags of 2), reset when the inner loop ends


@pytest.mark.slow
def test_import_does_not_need_lightning():
    import subprocess
    import sys

    code = ("import sys; sys.modules['lightning'] = None; sys.modules['pytorch_lightning'] = None\n"
            "import alm_bench.auglag as a; a.AugLagLR(a.AugLagLRConfig())\n"
            "try:\n    a.AugLagLRCallback\nexcept ImportError as e:\n    print('needs', e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "alm-bench[lightning]" in out.stdout


HAS_LIGHTNING = any(importlib.util.find_spec(name) for name in ("lightning", "pytorch_lightning"))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LIGHTNING, reason="PyTorch Lightning is not installed (pip install 'alm-bench[lightning]')")
def test_lightning_callback_solves_the_toy_problem():
    from alm_bench.auglag import AugLagLRCallback, AuglagLRCallback

    try:
        import lightning.pytorch as pl
    except ImportError:
        import pytorch_lightning as pl

    assert AuglagLRCallback is AugLagLRCallback

    class Toy(pl.LightningModule):
        """min x^2 s.t. x >= 3, the seed's problem, as the seed's Lightning example writes a module."""

        def __init__(self):
            super().__init__()
            self.x = Parameter(torch.zeros(()))
            self.training_config = AugLagLRConfig(lr_init_dict={"x": 0.1}, max_inner_steps=10, aggregation_period=1,
                                                  lr_update_lag_best=100, max_outer_steps=60)
            self.lr_scheduler = AugLagLR(config=self.training_config)
            self.loss_calc = AugLagLossCalculator(init_alpha=self.training_config.init_alpha,
                                                  init_rho=self.training_config.init_rho)

        def configure_callbacks(self):
            return [AuglagLRCallback(self.lr_scheduler, log_auglag=True, disabled_epochs=range(1))]

        def training_step(self, batch, batch_idx):
            constraint = torch.clamp(3 - self.x, min=0)
            return {"loss": self.loss_calc(self.x**2, constraint), "constraint": constraint}

        def configure_optimizers(self):
            return Adam([{"params": [self.x], "name": "x", "lr": 0.1}])

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.zeros(50, 1), batch_size=1)

    model = Toy()
    trainer = pl.Trainer(max_epochs=40, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model)
    assert model.lr_scheduler.outer_step > 0  # the callback stepped the scheduler after the disabled epoch
    assert float(model.x.detach()) > 2.95  # feasible (the heuristic may overshoot: alpha only grows)
