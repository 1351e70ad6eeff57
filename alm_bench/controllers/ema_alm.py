"""EMA-ALM: stochastic augmented Lagrangian for one global inequality g(theta) <= 0 in training (seed 001).

    primal   AdamW on  f + lambda (g + m) + rho/2 [g + m]_+^2          (every step; in the loss, so AMP
                                                                      scaling treats it like f)
    EMA      g_ema <- beta g_ema + (1 - beta) g                        (every step; starts at the first g)
    dual     lambda <- clip(lambda + alpha (g_ema + m), 0, lambda_max) (every `dual_every` steps or epoch)
    penalty  rho <- rho_growth rho after `patience` violated dual steps in a row (g_ema > -m),
             rho <- rho_decay rho after `relax_patience` feasible ones; clipped to [rho_min, rho_max]
m = `margin` >= 0 tightens the constraint to g <= -m, so that an iterate that keeps moving (SGD noise,
weight decay) still ends on the feasible side. The rules are plain functions; `EMAALM` holds the state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from alm_bench.controllers.base import StateDictMixin
from alm_bench.errors import require, require_int, require_positive


# ---- pure update rules -------------------------------------------------------------------------

def ema(previous: float, value: float, beta: float) -> float:
    """Exponential moving average; a NaN `previous` (no value yet) starts it at `value`, unbiased."""
    return value if math.isnan(previous) else beta * previous + (1 - beta) * value


def dual_ascent(lam: float, violation: float, alpha: float, lam_max: float) -> float:
    """Projected ascent on the dual: lambda + alpha * violation, clipped to [0, lam_max]."""
    return min(max(lam + alpha * violation, 0.0), lam_max)


def next_penalty(rho: float, violated_streak: int, feasible_streak: int, *, growth: float, decay: float,
                 patience: int, relax_patience: int, rho_min: float, rho_max: float) -> float:
    """Grow rho under persistent violation, relax it under sustained feasibility, keep it in bounds."""
    if violated_streak >= patience:
        rho *= growth
    elif feasible_streak >= relax_patience:
        rho *= decay
    return min(max(rho, rho_min), rho_max)


def augmented_term(g: Tensor, lam: float, rho: float, margin: float) -> Tensor:
    """lambda (g + m) + rho/2 [g + m]_+^2: its gradient is (lambda + rho [g + m]_+) grad g."""
    shifted = g + margin
    return lam * shifted + 0.5 * rho * shifted.clamp(min=0).square()


# ---- the controller ---------------------------------------------------------------------------

@dataclass
class EMAALMState:
    lam: float = 0.0
    rho: float = 1.0
    g_ema: float = math.nan
    steps: int = 0
    dual_steps: int = 0
    violated_streak: int = 0
    feasible_streak: int = 0


class EMAALM(StateDictMixin):
    accepts = ("stochastic",)
    resumes = accepts
    constrained = True

    def __init__(
        self,
        lam_init: float = 0.0,
        alpha: float = 2.0,
        lam_max: float = 100.0,
        beta: float = 0.9,
        dual_every: int | str = 10,
        margin: float = 0.02,
        rho_init: float = 1.0,
        rho_min: float = 0.1,
        rho_max: float = 100.0,
        rho_growth: float = 1.5,
        rho_decay: float = 0.9,
        patience: int = 3,
        relax_patience: int = 10,
    ) -> None:
        require(lam_init >= 0, "controller.lam_init", ">= 0", lam_init)
        require_positive("controller.alpha", alpha)
        require(lam_max >= lam_init, "controller.lam_max", f">= lam_init ({lam_init})", lam_max)
        require(0 <= beta < 1, "controller.beta", "in [0, 1)", beta)
        require(dual_every == "epoch" or (isinstance(dual_every, int) and dual_every >= 1), "controller.dual_every",
                "an integer >= 1 (steps) or 'epoch'", dual_every)
        require(margin >= 0, "controller.margin", ">= 0", margin)
        require(0 < rho_min <= rho_init <= rho_max, "controller.rho_init", f"in [rho_min, rho_max] = "
                f"[{rho_min}, {rho_max}]", rho_init)
        require(rho_growth >= 1, "controller.rho_growth", ">= 1", rho_growth)
        require(0 < rho_decay <= 1, "controller.rho_decay", "in (0, 1]", rho_decay)
        for field, value in (("patience", patience), ("relax_patience", relax_patience)):
            require_int(f"controller.{field}", value)
        self.alpha, self.lam_max, self.beta, self.dual_every, self.margin = alpha, lam_max, beta, dual_every, margin
        self.rho_min, self.rho_max, self.rho_growth, self.rho_decay = rho_min, rho_max, rho_growth, rho_decay
        self.patience, self.relax_patience = patience, relax_patience
        self.state = EMAALMState(lam=lam_init, rho=rho_init)

    def start(self, f0: float, g0: float) -> None:
        pass  # lambda and rho start from the config; the EMA starts at the first measured g

    def augmented_loss(self, f: Tensor, g: Tensor) -> Tensor:
        return f + augmented_term(g, self.state.lam, self.state.rho, self.margin)

    def _dual_due(self, epoch_end: bool) -> bool:
        return epoch_end if self.dual_every == "epoch" else self.state.steps % self.dual_every == 0

    def update(self, g: float, f: float, optimizer: torch.optim.Optimizer, epoch_end: bool) -> bool:
        s = self.state
        s.steps += 1
        s.g_ema = ema(s.g_ema, g, self.beta)
        if self._dual_due(epoch_end):
            violation = s.g_ema + self.margin
            s.lam = dual_ascent(s.lam, violation, self.alpha, self.lam_max)
            s.violated_streak, s.feasible_streak = ((s.violated_streak + 1, 0) if violation > 0
                                                    else (0, s.feasible_streak + 1))
            s.rho = next_penalty(s.rho, s.violated_streak, s.feasible_streak, growth=self.rho_growth,
                                 decay=self.rho_decay, patience=self.patience, relax_patience=self.relax_patience,
                                 rho_min=self.rho_min, rho_max=self.rho_max)
            if s.violated_streak >= self.patience:
                s.violated_streak = 0  # the next growth needs another `patience` violated dual steps
            if s.feasible_streak >= self.relax_patience:
                s.feasible_streak = 0
            s.dual_steps += 1
        return False  # EMA-ALM runs the problem's whole training budget

    def metrics(self) -> dict[str, float]:
        return {"g_ema": self.state.g_ema, "lambda": self.state.lam, "rho": self.state.rho}
