"""Seed 000's AugLagLR test, as written there (only the import line changed), plus the API's contract."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch.nn import Parameter
from torch.optim import Adam

from alm_bench.auglag import AugLagLRConfig, AugLagLR, AugLagLossCalculator


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


# ---- the rest of the API's contract -------------------------------------------------------------

def test_step_result_is_falsy_until_converged_and_unpacks_to_reasons():
    from alm_bench.auglag import InnerReason, OuterReason

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
