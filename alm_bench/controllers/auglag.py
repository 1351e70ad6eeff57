"""`controller=auglag`: seed 000's AugLagLR scheduler driving a training run.

The loss is AugLagLossCalculator(f, [g]_+) (the scheduler needs a non-negative penalty); after every
optimizer step `AugLagLR.step` decays or resets the learning rate and updates alpha and rho between
inner loops. The run stops early when the scheduler reports convergence.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from alm_bench.auglag import AugLagLossCalculator, AugLagLR, AugLagLRConfig
from alm_bench.controllers.base import StateDictMixin
from alm_bench.errors import ConfigError


class AugLagController(StateDictMixin):
    accepts = ("smooth", "stochastic")  # smooth problems run seed 000's own loop (runners/smooth_auglag.py)
    resumes = ("stochastic",)          # seed 000's smooth loop keeps no checkpoint
    constrained = True
    state_children = {"loss": "loss_calc", "scheduler": "scheduler"}

    def __init__(self, **config: Any) -> None:
        known = {f.name for f in dataclasses.fields(AugLagLRConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"controller.{unknown[0]} is not an AugLagLRConfig field "
                              f"(fields: {', '.join(sorted(known))})")
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

    def metrics(self) -> dict[str, float]:
        return {"lambda": float(self.loss_calc.alpha), "rho": float(self.loss_calc.rho),
                "outer_step": float(self.scheduler.outer_step)}
