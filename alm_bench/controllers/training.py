"""What the stochastic training loop asks of a controller, and the adapter that lets classic ALM drive it.

    start(f0, g0)                      once, with the first step's loss and violation
    augmented_loss(f, g) -> Tensor     the loss that is backpropagated (f plus the constraint terms)
    update(g, f, optimizer, epoch_end) after each optimizer step, with this step's values (the same on
                                       every DDP rank); returns True when the controller has converged
    metrics() -> dict                  lambda, rho (and g_ema) for the trace
    state_dict() / load_state_dict()   for checkpoints
`constrained = False` tells the loop not to evaluate the constraint for the gradient at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from alm_bench.controllers.base import StateDictMixin
from alm_bench.controllers.classic_alm import ClassicALM
from alm_bench.errors import UserError


class TrainingController(Protocol):
    constrained: bool

    def start(self, f0: float, g0: float) -> None: ...
    def augmented_loss(self, f: Tensor, g: Tensor) -> Tensor: ...
    def update(self, g: float, f: float, optimizer: torch.optim.Optimizer, epoch_end: bool) -> bool: ...
    def metrics(self) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class InnerStretch:
    steps_since_dual: int = 0


class ClassicALMInTraining(StateDictMixin):
    """Classic PHR ALM on a training run: the inexact inner solve is a stretch of AdamW steps that ends
    at each epoch end or after `max_inner_steps` steps, whichever comes first; then ClassicALM's own
    multiplier and penalty rules run on the measured violation (g depends on the weights only, not on
    the batch, so it is exact). Its stationarity test needs full gradients and is not used: the run
    lasts the problem's training budget."""

    constrained = True
    state_children = {"alm": "alm"}

    def __init__(self, alm: ClassicALM) -> None:
        self.alm = alm
        self.state = InnerStretch()

    def start(self, f0: float, g0: float) -> None:
        self.alm.start(torch.tensor(f0), torch.zeros(0), torch.tensor([g0]))

    def augmented_loss(self, f: Tensor, g: Tensor) -> Tensor:
        return self.alm.lagrangian(f, f.new_zeros(0), g.reshape(1))

    def update(self, g: float, f: float, optimizer: torch.optim.Optimizer, epoch_end: bool) -> bool:
        self.state.steps_since_dual += 1
        if epoch_end or self.state.steps_since_dual >= self.alm.max_inner_steps:
            self.alm.step(torch.zeros(0), torch.tensor([g]))
            self.state.steps_since_dual = 0
        return False

    def metrics(self) -> dict[str, float]:
        s = self.alm.state
        return {"lambda": float(s.mu[0]) if s.mu.numel() else 0.0, "rho": s.rho}


def for_training(controller: Any) -> TrainingController:
    if isinstance(controller, ClassicALM):
        return ClassicALMInTraining(controller)
    if callable(getattr(controller, "augmented_loss", None)):
        return controller
    raise UserError(f"{type(controller).__name__} cannot drive a training loop (it has no augmented_loss)")
