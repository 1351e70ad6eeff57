"""`controller=auglag`: seed 000's AugLagLR scheduler driving a training run.

The loss is AugLagLossCalculator(f, [g]_+) (the scheduler needs a non-negative penalty); after every
optimizer step `AugLagLR.step` decays or resets the learning rate and updates alpha and rho between
inner loops. The run stops early when the scheduler says so; whether it then counts as converged is the
loop's measurement, not the scheduler's word (AugLagLR tests the penalty only, never optimality).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from alm_bench.auglag import AugLagLossCalculator, AugLagLR, AugLagLRConfig
from alm_bench.controllers.base import StateDictMixin
from alm_bench.errors import ConfigError, require_positive


class AugLagController(StateDictMixin):
    accepts = ("smooth", "stochastic")  # smooth problems run seed 000's own loop (runners/smooth_auglag.py)
    resumes = ("stochastic",)          # seed 000's smooth loop keeps no checkpoint
    constrained = True
    state_children = {"loss": "loss_calc", "scheduler": "scheduler"}

    def __init__(self, stationarity_tol: float = 1e-6, **config: Any) -> None:
        # alm-bench's own test of a smooth run's final point (with penalty_tolerance as the feasibility
        # tolerance); the scheduler itself never looks at it
        require_positive("controller.stationarity_tol", stationarity_tol)
        self.stationarity_tol = float(stationarity_tol)
        known = {f.name for f in dataclasses.fields(AugLagLRConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"controller.{unknown[0]} is not an AugLagLRConfig field "
                              f"(fields: {', '.join(sorted(known | {'stationarity_tol'}))})")
        self.config = AugLagLRConfig(**config)
        self.scheduler = AugLagLR(self.config)
        self.loss_calc = AugLagLossCalculator(self.config.init_alpha, self.config.init_rho)
        self.last_reasons: tuple = ()

    def start(self, f0: float, g0: float) -> None:
        pass

    def augmented_loss(self, f: Tensor, g: Tensor) -> Tensor:
        if self.loss_calc.alpha.device != f.device:
            self.loss_calc.to(f.device)
        return self.loss_calc(f, g.clamp(min=0))

    def update(self, g: float, f: float, optimizer: torch.optim.Optimizer, epoch_end: bool) -> bool:
        result = self.scheduler.step(optimizer=optimizer, loss=self.loss_calc, loss_value=f,
                                     lagrangian_penalty=max(g, 0.0))
        self.last_reasons = tuple(r.name for r in result.reasons)
        return bool(result)

    def stop_reasons(self) -> str:
        """The scheduler's reasons for its last answer, e.g. 'MAX_INNER_STEPS_REACHED, PENALTY_TOLERANCE_REACHED'."""
        return ", ".join(self.last_reasons)

    def metrics(self) -> dict[str, float]:
        return {"lambda": float(self.loss_calc.alpha), "rho": float(self.loss_calc.rho),
                "outer_step": float(self.scheduler.outer_step)}
