"""The AdamW baseline: the loss is the objective alone; the constraint is only measured for the trace."""

from __future__ import annotations

import torch
from torch import Tensor

from alm_bench.controllers.base import StateDictMixin


class Unconstrained(StateDictMixin):
    """No state at all: its state_dict is empty."""

    accepts = ("stochastic",)
    resumes = accepts
    constrained = False  # the loop never builds the constraint's graph: a plain AdamW step

    def start(self, f0: float, g0: float) -> None:
        pass

    def augmented_loss(self, f: Tensor, g: Tensor) -> Tensor:
        return f

    def update(self, g: float, f: float, optimizer: torch.optim.Optimizer, epoch_end: bool) -> bool:
        return False

    def metrics(self) -> dict[str, float]:
        return {}
