"""Budget statistics: the constraint g(theta) = log K(theta) - B <= 0 of the classifier (config group `budget`).

K is a geometric mean over every conv and linear weight W (reshaped to out x in*k*k):
  spectral     K = geomean_l  sigma_max(W_l) / sqrt(fan_in_l)   (a Lipschitz-style bound), sigma_max by
               power iteration with persistent vectors: one matrix-vector pair per layer per step, so
               the constraint costs O(#weights) per step, next to O(batch x #weights x pixels) for the loss;
  weight_norm  K = geomean_l  |W_l|_F / sqrt(fan_in_l).
B is `value` itself (bound=absolute) or the median of log K over the warm-up plus `value` (bound=relative;
warmup_epochs=0 measures once at initialisation).
"""

from __future__ import annotations

import math
import statistics
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor, nn

from alm_bench.errors import require, require_int

BOUNDS = ("absolute", "relative")


def constrained_weights(model: nn.Module) -> list[Tensor]:
    """Every conv and linear weight, in module order (the same order on every DDP rank)."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]


class Budget(ABC):
    """A statistic log K of the weights and its bound B; `violation()` is g = log K - B (fp32, differentiable)."""

    name = "budget"

    def __init__(self, bound: str = "relative", value: float = 0.0, warmup_epochs: float = 0.0) -> None:
        require(bound in BOUNDS, "problem.budget.bound", f"one of {', '.join(BOUNDS)}", bound)
        require(isinstance(value, (int, float)) and math.isfinite(value), "problem.budget.value", "a finite number",
                value)
        require(isinstance(warmup_epochs, (int, float)) and warmup_epochs >= 0, "problem.budget.warmup_epochs",
                ">= 0", warmup_epochs)
        require(bound == "relative" or warmup_epochs == 0, "problem.budget.warmup_epochs",
                "0 when bound=absolute (the warm-up only measures a relative bound)", warmup_epochs)
        self.bound, self.value, self.warmup_epochs = bound, float(value), float(warmup_epochs)
        self.B: float | None = float(value) if bound == "absolute" else None
        self.weights: list[Tensor] = []

    def attach(self, model: nn.Module, seed: int = 0) -> None:
        self.weights = constrained_weights(model)
        require(bool(self.weights), "problem.model", "a network with conv or linear layers", type(model).__name__)

    @abstractmethod
    def _log_k(self) -> Tensor:
        """log K(theta) as a differentiable fp32 scalar."""

    def log_k(self) -> Tensor:
        # Always full precision, also when called inside an autocast region: a bf16 log K would be
        # off by ~1e-2, the size of the margins the controller works with.
        with torch.autocast(device_type=self.weights[0].device.type, enabled=False):
            return self._log_k()

    def violation(self) -> Tensor:
        assert self.B is not None, "the bound is set after the warm-up"
        return self.log_k() - self.B

    def set_bound_from(self, measurements: list[float]) -> float:
        """B = median of the warm-up measurements of log K + value (bound=relative)."""
        self.B = statistics.median(measurements) + self.value
        return self.B

    def state_dict(self) -> dict[str, Any]:
        return {"B": self.B}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.B = None if state["B"] is None else float(state["B"])


def _unit(x: Tensor) -> Tensor:
    return x / x.norm().clamp_min(1e-12)


class SpectralBudget(Budget):
    """log K = mean over layers of log(sigma_max(W) / sqrt(fan_in)), sigma_max = u^T W v by power iteration."""

    name = "spectral"

    def __init__(self, bound: str = "relative", value: float = 0.0, warmup_epochs: float = 0.0,
                 power_iterations: int = 1, initial_iterations: int = 20) -> None:
        super().__init__(bound, value, warmup_epochs)
        require_int("problem.budget.power_iterations", power_iterations)
        require_int("problem.budget.initial_iterations", initial_iterations, minimum=0)
        self.power_iterations, self.initial_iterations = power_iterations, initial_iterations
        self.u: list[Tensor] = []
        self.v: list[Tensor] = []

    def attach(self, model: nn.Module, seed: int = 0) -> None:
        super().attach(model)
        gen = torch.Generator().manual_seed(seed)  # the same start vectors on every rank
        self.u = [_unit(torch.randn(w.shape[0], generator=gen)).to(w.device) for w in self.weights]
        self.v = [_unit(torch.randn(w[0].numel(), generator=gen)).to(w.device) for w in self.weights]
        self._power_iterate(self.initial_iterations)  # converged vectors before the first measurement

    @torch.no_grad()
    def _power_iterate(self, n: int) -> None:
        for w, u, v in zip(self.weights, self.u, self.v):
            mat = w.detach().float().reshape(w.shape[0], -1)
            for _ in range(n):
                v.copy_(_unit(mat.t() @ u))
                u.copy_(_unit(mat @ v))

    def _log_k(self) -> Tensor:
        self._power_iterate(self.power_iterations)
        # sigma = u^T W v with u, v held fixed: its gradient is u v^T, the top singular pair.
        terms = [torch.log(torch.dot(u, w.float().reshape(w.shape[0], -1) @ v)) - 0.5 * math.log(v.numel())
                 for w, u, v in zip(self.weights, self.u, self.v)]
        return torch.stack(terms).mean()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "u": [u.clone() for u in self.u], "v": [v.clone() for v in self.v]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for mine, saved in zip(self.u + self.v, list(state["u"]) + list(state["v"])):
            mine.copy_(saved)


class WeightNormBudget(Budget):
    """log K = mean over layers of log(|W|_F / sqrt(fan_in))."""

    name = "weight_norm"

    def _log_k(self) -> Tensor:
        terms = [torch.log(w.float().norm()) - 0.5 * math.log(w[0].numel()) for w in self.weights]
        return torch.stack(terms).mean()
