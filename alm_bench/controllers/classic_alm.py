"""Classic augmented Lagrangian (Powell–Hestenes–Rockafellar) for h(x) = 0, g(x) <= 0.

    L_rho(x, lam, mu) = f + lam.h + rho/2 |h|^2 + 1/(2 rho) sum_j [max(0, mu_j + rho g_j)^2 - mu_j^2]

After each approximate inner minimisation of L_rho: first-order multiplier update with safeguards,
and the ALGENCAN penalty rule (raise rho by `rho_growth` when the progress measure did not drop by
`progress_ratio`). The update rules are plain functions; `ClassicALM` only holds their state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from alm_bench.controllers.base import StateDictMixin
from alm_bench.errors import ConfigError, require, require_int, require_positive


# ---- pure update rules -------------------------------------------------------------------------

def augmented_lagrangian(f: Tensor, h: Tensor, g: Tensor, lam: Tensor, mu: Tensor, rho: float) -> Tensor:
    """PHR augmented Lagrangian; its inequality part is C^1 with gradient J_g^T max(0, mu + rho g)."""
    value = f
    if h.numel():
        value = value + lam @ h + 0.5 * rho * (h @ h)
    if g.numel():
        value = value + ((mu + rho * g).clamp(min=0).square() - mu.square()).sum() / (2 * rho)
    return value


def multiplier_update(h: Tensor, g: Tensor, lam: Tensor, mu: Tensor, rho: float,
                      bound: float) -> tuple[Tensor, Tensor]:
    """lam <- lam + rho h, mu <- max(0, mu + rho g), both safeguarded to [-bound, bound]."""
    return (lam + rho * h).clamp(-bound, bound), (mu + rho * g).clamp(0, bound)


def progress_measure(h: Tensor, g: Tensor, mu: Tensor, rho: float) -> float:
    """max(|h|_inf, |min(-g, mu/rho)|_inf): zero iff x is feasible and complementary with mu."""
    parts = [h.abs().max()] if h.numel() else []
    if g.numel():
        parts.append(torch.minimum(-g, mu / rho).abs().max())
    return float(torch.stack(parts).max()) if parts else 0.0


def next_penalty(rho: float, progress: float, previous: float, *, ratio: float, growth: float,
                 rho_max: float, feasibility_tol: float) -> float:
    """Raise rho when progress stalled; never once feasible (a stalled inexact solve is no reason)."""
    if progress > feasibility_tol and progress > ratio * previous:
        return min(rho * growth, rho_max)
    return rho


def algencan_initial_penalty(f0: float, h0: Tensor, g0: Tensor) -> float:
    """rho_1 = 10 max(1, |f(x0)|) / max(1, |h0|^2/2 + |max(0, g0)|^2/2), clipped to [1e-8, 1e8]."""
    infeas = 0.5 * float(h0 @ h0) + 0.5 * float(g0.clamp(min=0).square().sum())
    return min(max(10 * max(1.0, abs(f0)) / max(1.0, infeas), 1e-8), 1e8)


# ---- the controller ---------------------------------------------------------------------------

# Options the inner optimizer gets unless the config sets them, per optimizer class: choosing another one
# (controller.inner_optimizer.name=Adam) must not carry L-BFGS's options to it (Adam takes no max_iter).
OPTIMIZER_DEFAULTS = {"LBFGS": {"lr": 1.0, "max_iter": 100, "line_search_fn": "strong_wolfe"}}


@dataclass
class ClassicALMState:
    lam: Tensor = field(default_factory=lambda: torch.zeros(0))
    mu: Tensor = field(default_factory=lambda: torch.zeros(0))
    rho: float = 1.0
    inner_tol: float = 1e-2
    previous_progress: float = math.inf
    outer_step: int = 0


class ClassicALM(StateDictMixin):
    """PHR augmented Lagrangian controller. Call `start` once, then `step(h, g)` after each inner solve."""

    accepts = ("smooth", "stochastic", "conic")  # stochastic and conic loops reuse the update rules
    resumes = accepts

    def __init__(
        self,
        rho: float | None = None,
        rho_growth: float = 10.0,
        progress_ratio: float = 0.5,
        rho_max: float = 1e8,
        multiplier_bound: float = 1e20,
        max_outer_iterations: int = 50,
        feasibility_tol: float = 1e-8,
        stationarity_tol: float = 1e-6,
        inner_tol_init: float = 1e-2,
        inner_tol_decay: float = 0.1,
        max_inner_steps: int = 2000,
        inner_optimizer: dict[str, Any] | None = None,
        newton_polish: bool = True,
        time_limit_s: float | None = None,
    ) -> None:
        if rho is not None:
            require_positive("controller.rho", rho)
        require(rho_growth > 1, "controller.rho_growth", "> 1", rho_growth)
        require(0 < progress_ratio < 1, "controller.progress_ratio", "in (0, 1)", progress_ratio)
        require_positive("controller.rho_max", rho_max)
        require_positive("controller.multiplier_bound", multiplier_bound)
        require_int("controller.max_outer_iterations", max_outer_iterations)
        require_positive("controller.feasibility_tol", feasibility_tol)
        require_positive("controller.stationarity_tol", stationarity_tol)
        require_positive("controller.inner_tol_init", inner_tol_init)
        require(0 < inner_tol_decay <= 1, "controller.inner_tol_decay", "in (0, 1]", inner_tol_decay)
        require_int("controller.max_inner_steps", max_inner_steps)
        if time_limit_s is not None:
            require_positive("controller.time_limit_s", time_limit_s)
        self.time_limit_s = time_limit_s
        self.rho_init = rho
        self.rho_growth = rho_growth
        self.progress_ratio = progress_ratio
        self.rho_max = rho_max
        self.multiplier_bound = multiplier_bound
        self.max_outer_iterations = max_outer_iterations
        self.feasibility_tol = feasibility_tol
        self.stationarity_tol = stationarity_tol
        self.inner_tol_decay = inner_tol_decay
        self.max_inner_steps = max_inner_steps
        self.newton_polish = bool(newton_polish)
        # An option left null means "not set": the class's own default, or ours for LBFGS (OPTIMIZER_DEFAULTS).
        spec = {"name": "LBFGS", **{k: v for k, v in (inner_optimizer or {}).items() if v is not None}}
        self.inner_optimizer = {**OPTIMIZER_DEFAULTS.get(str(spec["name"]), {}), **spec}
        if not hasattr(torch.optim, str(self.inner_optimizer.get("name"))):
            raise ConfigError(f"controller.inner_optimizer.name must name a torch.optim class, "
                              f"got {self.inner_optimizer.get('name')!r}")
        self.state = ClassicALMState(inner_tol=inner_tol_init)

    # -- lifecycle
    def start(self, f0: Tensor, h0: Tensor, g0: Tensor, default_rho: float | None = None) -> None:
        """Zero multipliers shaped like the constraints; the initial penalty: controller.rho if set, else
        `default_rho` (a loop that knows its problem's scale), else ALGENCAN's rule."""
        rho = (self.rho_init if self.rho_init is not None else
               default_rho if default_rho is not None else algencan_initial_penalty(float(f0), h0, g0))
        self.state.lam, self.state.mu = torch.zeros_like(h0), torch.zeros_like(g0)
        self.state.rho = min(rho, self.rho_max)

    def lagrangian(self, f: Tensor, h: Tensor, g: Tensor) -> Tensor:
        s = self.state
        return augmented_lagrangian(f, h, g, s.lam.to(h), s.mu.to(g), s.rho)

    def step(self, h: Tensor, g: Tensor) -> None:
        """Dual step after an inner solve: multipliers, then penalty, then a tighter inner tolerance."""
        s = self.state
        h, g = h.detach(), g.detach()
        progress = progress_measure(h, g, s.mu, s.rho)
        s.lam, s.mu = multiplier_update(h, g, s.lam, s.mu, s.rho, self.multiplier_bound)
        s.rho = next_penalty(s.rho, progress, s.previous_progress, ratio=self.progress_ratio,
                             growth=self.rho_growth, rho_max=self.rho_max,
                             feasibility_tol=self.feasibility_tol)
        s.previous_progress = progress
        s.inner_tol = max(self.stationarity_tol, self.inner_tol_decay * s.inner_tol)
        s.outer_step += 1

    def converged(self, stationarity: float, violation: float, complementarity: float) -> bool:
        return (stationarity <= self.stationarity_tol and violation <= self.feasibility_tol
                and complementarity <= self.feasibility_tol)

    def warm_up(self) -> None:
        """torch.optim's first construction imports its compiler stack (~1.5 s): loops pay it before their
        clock starts (the conic Burer-Monteiro loop builds an optimizer per outer step)."""
        self.make_inner_optimizer([torch.zeros(1, dtype=torch.float64, requires_grad=True)])

    def make_inner_optimizer(self, params: list[Tensor]) -> torch.optim.Optimizer:
        spec = dict(self.inner_optimizer)
        cls = getattr(torch.optim, spec.pop("name"))
        if cls is torch.optim.LBFGS:
            # LBFGS stops itself at the current inner tolerance; tolerance_change must not stop it first.
            spec.setdefault("tolerance_change", 1e-14)
            spec["tolerance_grad"] = self.state.inner_tol
        try:
            return cls(params, **spec)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"controller.inner_optimizer: {cls.__name__} rejected its options: {e}") from None

    # -- what the trace shows
    def metrics(self) -> dict[str, float]:
        s = self.state
        return {"rho": s.rho, "lambda_norm": float(s.lam.norm()) if s.lam.numel() else 0.0,
                "mu_norm": float(s.mu.norm()) if s.mu.numel() else 0.0, "inner_tol": s.inner_tol}
