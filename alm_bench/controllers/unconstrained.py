"""The AdamW baseline: the loss is the objective alone; the constraint is only measured for the trace."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class Unconstrained:
    accepts = ("stochastic",)
    constrained = False  # the loop never builds the constraint's graph: a plain AdamW step

    def start(self, f0: float, g0: float) -> None:
        pass

    def augmented_loss(self, f: Tensor, g: Tensor) -> Tensor:
        return f

    def update(self, g: float, f: float, optimizer: torch.optim.Optimizer, epoch_end: bool) -> bool:
        return False

    def metrics(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
