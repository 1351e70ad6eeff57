"""The AugLagLR scheduler API of seed 000 (causica's design, reimplemented; no causica dependency).

    loss_calc = AugLagLossCalculator(init_alpha=0.0, init_rho=1.0)   # objective + a c + rho c^2 / 2
    scheduler = AugLagLR(config=AugLagLRConfig(...))
    ... loss_calc(objective, constraint).backward(); optimizer.step()
    if scheduler.step(optimizer=optimizer, loss=loss_calc, loss_value=objective, lagrangian_penalty=constraint):
        break

Inner loop: plain optimizer steps, the learning rate cut by `lr_factor` when the windowed loss stalls.
Outer loop: when the inner loop ends, raise rho tenfold if the penalty did not drop to
`penalty_progress_rate` x its value at the last accepted update, else alpha += rho * penalty.
It is a scheduler heuristic (alpha never decreases), not textbook ALM: see controllers/classic_alm.py.
`AugLagLRCallback` (alias `AuglagLRCallback`) needs PyTorch Lightning and is imported on first use.
"""

from __future__ import annotations

import math
from collections import deque, namedtuple
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable

import torch
from torch import Tensor, nn


@dataclass
class AugLagLRConfig:
    """Every field of the scheduler, with causica's defaults."""

    lr_update_lag: int = 500               # steps since the last lr change before the next one may happen ...
    lr_update_lag_best: int = 250          # ... and steps since the last best windowed loss
    lr_init_dict: dict[str, float] = field(default_factory=dict)  # param-group name -> lr at each inner start;
    #                                        a group not named here restarts from the lr it had at the first step
    aggregation_period: int = 20           # the loss is averaged over this many steps before comparing to the best
    lr_factor: float = 0.1                 # lr <- lr_factor * lr on a stall
    penalty_progress_rate: float = 0.65    # accept the update if penalty <= rate * penalty at the last acceptance
    safety_rho: float = 1e13               # caps on rho and alpha
    safety_alpha: float = 1e13
    max_lr_down: int = 3                   # the inner loop ends after this many lr cuts ...
    inner_early_stopping_patience: int = 500  # ... or this many steps without a new best windowed loss ...
    max_inner_steps: int = 3000            # ... or this many steps
    max_outer_steps: int = 100             # converged after this many outer updates ...
    patience_penalty_reached: int = 5      # ... or this many consecutive outer updates with penalty < tolerance ...
    patience_max_rho: int = 3              # ... or this many consecutive outer updates with rho at safety_rho
    penalty_tolerance: float = 1e-5
    force_not_converged: bool = False      # only max_outer_steps ends the outer loop
    init_alpha: float = 0.0                # read by the seed's Lightning example to build the loss calculator
    init_rho: float = 1.0


class InnerReason(Enum):
    """Why an inner loop ended (values as in causica, whose Lightning logs record them)."""

    MAX_INNER_STEPS_REACHED = 1
    NUM_LR_UPDATES_REACHED = 2
    EARLY_STOPPING_REACHED = 3
    NOT_CONVERGED = 4


class OuterReason(Enum):
    """Why the outer loop ended."""

    MAX_OUTER_STEPS_REACHED = 1
    PENALTY_TOLERANCE_REACHED = 2
    PATIENCE_MAX_RHO_REACHED = 3
    NOT_CONVERGED = 4


# causica's names, so that code (and causica's own tests) written against it runs with only the import changed.
AugLagInnerConvergenceReason = InnerReason
AugLagOuterConvergenceReason = OuterReason
AugLagConvergenceReasonTuple = namedtuple("AugLagConvergenceReasonTuple",
                                          ["inner_convergence_reason", "outer_convergence_reason"])


class StepResult(tuple):
    """`(converged, AugLagConvergenceReasonTuple(inner, outer))` whose truth value is `converged`.

    causica returns the pair, seed 000's test writes `if scheduler.step(...): break`; a plain tuple is
    always truthy, so this one answers both `if result:` and `converged, reasons = result`.
    """

    def __new__(cls, converged: bool, reasons: tuple[InnerReason, OuterReason]) -> "StepResult":
        return super().__new__(cls, (bool(converged), AugLagConvergenceReasonTuple(*reasons)))

    def __bool__(self) -> bool:
        return self[0]

    @property
    def converged(self) -> bool:
        return self[0]

    @property
    def reasons(self) -> AugLagConvergenceReasonTuple:
        return self[1]


class AugLagLossCalculator(nn.Module):
    """objective + alpha * c + rho * c^2 / 2 for a non-negative constraint measure c (summed if a vector).

    alpha and rho are float32 buffers: they are in the state_dict and move with `.to(device)`.
    """

    alpha: Tensor
    rho: Tensor

    def __init__(self, init_alpha: float, init_rho: float) -> None:
        super().__init__()
        self.register_buffer("alpha", torch.tensor(float(init_alpha), dtype=torch.float32))
        self.register_buffer("rho", torch.tensor(float(init_rho), dtype=torch.float32))

    def forward(self, objective: Tensor, constraint: Tensor) -> Tensor:
        return objective + (self.alpha * constraint + self.rho * constraint * constraint / 2).sum()


def _optimizers(optimizer: torch.optim.Optimizer | Iterable[torch.optim.Optimizer]) -> list[torch.optim.Optimizer]:
    return [optimizer] if isinstance(optimizer, torch.optim.Optimizer) else list(optimizer)


def _as_tensor(value: Tensor | float) -> Tensor:
    """A detached 0-d tensor: the scheduler compares and sums in the caller's dtype (float32 in the usual
    case), as the original does, so that its decisions are the original's to the last bit."""
    return value.detach().sum() if isinstance(value, Tensor) else torch.tensor(float(value))


class AugLagLR:
    """Inner/outer augmented Lagrangian schedule driven by `step` after every optimizer step.

    Deliberate differences from causica's AugLagLR, none of which changes a decision on its inputs: the
    result is falsy until converged (see StepResult) and stays converged once it was; a group missing from
    lr_init_dict restarts at the lr it had at the first step (causica raises KeyError); a vector penalty is
    summed and a plain float is accepted; a negative penalty raises ValueError (causica asserts).
    """

    def __init__(self, config: AugLagLRConfig) -> None:
        self.config = config
        self.outer_step = 0
        self.num_below_tolerance = 0
        # As in causica, this counts outer updates that start with rho above safety_rho, and is never reset.
        # Since every update ends with rho clipped to safety_rho, only an init_rho above the cap counts, so
        # PATIENCE_MAX_RHO_REACHED is rare; counting updates *at* the cap instead ends the seed toy early,
        # at x = 3.09 (PATIENCE_MAX_RHO_REACHED) where causica's own test expects PENALTY_TOLERANCE_REACHED.
        self.num_max_rho = 0
        self.last_accepted_penalty = torch.tensor(math.inf)
        self._converged: StepResult | None = None
        self._disabled_state: dict[str, Tensor] | None = None
        self._initial_lrs: dict[str, float] = {}
        self._reset_inner()

    def _reset_inner(self) -> None:
        self.inner_step = 0
        self.num_lr_updates = 0
        self.last_lr_update_step = 0
        self.last_best_step = 0
        self.best_loss = torch.tensor(math.inf)
        self.loss_window: deque[Tensor] = deque(maxlen=self.config.aggregation_period)
        self.loss_sum: Tensor | None = None   # a running sum in the loss's dtype, as in the original

    # -- enabling (e.g. Lightning's disabled warm-up epochs)
    @property
    def disabled(self) -> bool:
        return self._disabled_state is not None

    def disable(self, loss: AugLagLossCalculator) -> None:
        """Save alpha and rho and zero them: the loss is the plain objective until `enable`."""
        if self._disabled_state is None:
            self._disabled_state = {k: v.clone() for k, v in loss.state_dict().items()}
            loss.alpha.zero_()
            loss.rho.zero_()

    def enable(self, loss: AugLagLossCalculator) -> None:
        if self._disabled_state is not None:
            loss.load_state_dict(self._disabled_state)
            self._disabled_state = None

    # -- learning rates
    def _group_key(self, index: int, group: dict[str, Any]) -> str:
        return str(group.get("name", index))

    def _remember_initial_lrs(self, optimizers: list[torch.optim.Optimizer]) -> None:
        for opt in optimizers:
            for i, group in enumerate(opt.param_groups):
                self._initial_lrs.setdefault(self._group_key(i, group), group["lr"])

    def reset_lr(self, optimizer: torch.optim.Optimizer | Iterable[torch.optim.Optimizer]) -> None:
        """Every group's lr back to lr_init_dict[group name] (or its lr at the first step)."""
        for opt in _optimizers(optimizer):
            for i, group in enumerate(opt.param_groups):
                key = self._group_key(i, group)
                group["lr"] = self.config.lr_init_dict.get(key, self._initial_lrs.get(key, group["lr"]))

    def _decay_lr(self, optimizers: list[torch.optim.Optimizer]) -> None:
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] *= self.config.lr_factor
        self.num_lr_updates += 1
        self.last_lr_update_step = self.inner_step

    # -- the windowed loss
    def _record_loss(self, value: Tensor) -> None:
        if self.loss_sum is None:
            self.loss_sum = torch.zeros_like(value)
        if len(self.loss_window) == self.loss_window.maxlen:
            self.loss_sum = self.loss_sum - self.loss_window.popleft()
        self.loss_window.append(value)
        self.loss_sum = self.loss_sum + value

    def _record_best(self) -> None:
        if self.loss_sum is not None and len(self.loss_window) == self.loss_window.maxlen:
            windowed = self.loss_sum / self.loss_window.maxlen
            if windowed < self.best_loss:
                self.best_loss, self.last_best_step = windowed, self.inner_step

    # -- convergence tests
    def _inner_reason(self) -> InnerReason:
        c = self.config
        if self.inner_step >= c.max_inner_steps:
            return InnerReason.MAX_INNER_STEPS_REACHED
        if self.num_lr_updates >= c.max_lr_down:
            return InnerReason.NUM_LR_UPDATES_REACHED
        if self.inner_step - self.last_best_step >= c.inner_early_stopping_patience:
            return InnerReason.EARLY_STOPPING_REACHED
        return InnerReason.NOT_CONVERGED

    def _outer_reason(self) -> tuple[bool, OuterReason]:
        c = self.config
        at_max = self.outer_step >= c.max_outer_steps
        if c.force_not_converged:   # only the step budget ends the loop; the reason names that budget
            return at_max, OuterReason.MAX_OUTER_STEPS_REACHED
        if at_max:
            return True, OuterReason.MAX_OUTER_STEPS_REACHED
        if self.num_below_tolerance >= c.patience_penalty_reached:
            return True, OuterReason.PENALTY_TOLERANCE_REACHED
        if self.num_max_rho >= c.patience_max_rho:
            return True, OuterReason.PATIENCE_MAX_RHO_REACHED
        return False, OuterReason.NOT_CONVERGED

    # -- the multiplier update, once per finished inner loop
    def _update_multipliers(self, loss: AugLagLossCalculator, penalty: Tensor) -> None:
        c = self.config
        self.num_below_tolerance = self.num_below_tolerance + 1 if bool(penalty < c.penalty_tolerance) else 0
        with torch.no_grad():   # comparisons in the buffers' float32, as the original's
            if bool(loss.rho > c.safety_rho):
                self.num_max_rho += 1
            if bool(penalty > self.last_accepted_penalty * c.penalty_progress_rate):
                loss.rho.mul_(10.0)
            else:
                self.last_accepted_penalty = penalty
                loss.alpha.add_(loss.rho * penalty)
                if bool(penalty == 0.0):  # an exactly satisfied constraint gives alpha no signal: push it anyway
                    loss.alpha.mul_(5.0)
            if bool(loss.rho >= c.safety_rho):
                loss.alpha.mul_(5.0)
            loss.alpha.clamp_(max=c.safety_alpha)
            loss.rho.clamp_(max=c.safety_rho)

    def step(self, optimizer: torch.optim.Optimizer | Iterable[torch.optim.Optimizer], loss: AugLagLossCalculator,
             loss_value: Tensor | float, lagrangian_penalty: Tensor | float) -> StepResult:
        """One scheduler step after an optimizer step; truthy (and `(True, reasons)`) once converged."""
        if self.disabled:
            return StepResult(False, (InnerReason.NOT_CONVERGED, OuterReason.NOT_CONVERGED))
        if self._converged is not None:
            return self._converged
        penalty = _as_tensor(lagrangian_penalty)
        if bool(penalty < 0):
            raise ValueError(f"lagrangian_penalty must be >= 0 (pass e.g. max(g, 0)), got {float(penalty)}")
        optimizers = _optimizers(optimizer)
        self._remember_initial_lrs(optimizers)

        self._record_loss(_as_tensor(loss_value))
        self.inner_step += 1  # counts this step, so an inner loop is exactly max_inner_steps optimizer steps
        self._record_best()

        inner = self._inner_reason()
        outer_done, outer = self._outer_reason()
        if inner is not InnerReason.NOT_CONVERGED and outer_done:
            self._converged = StepResult(True, (inner, outer))
            return self._converged
        if inner is not InnerReason.NOT_CONVERGED:
            self._update_multipliers(loss, penalty)
            self.outer_step += 1
            self._reset_inner()
            self.reset_lr(optimizers)
        elif (self.inner_step - self.last_lr_update_step >= self.config.lr_update_lag
              and self.inner_step - self.last_best_step >= self.config.lr_update_lag_best):
            self._decay_lr(optimizers)
        return StepResult(False, (inner, outer))

    # -- checkpointing (tensors keep their dtype, so a resumed run decides exactly as the whole one)
    def state_dict(self) -> dict[str, Any]:
        return {"outer_step": self.outer_step, "num_below_tolerance": self.num_below_tolerance,
                "num_max_rho": self.num_max_rho, "last_accepted_penalty": self.last_accepted_penalty.clone(),
                "inner_step": self.inner_step, "num_lr_updates": self.num_lr_updates,
                "last_lr_update_step": self.last_lr_update_step, "last_best_step": self.last_best_step,
                "best_loss": self.best_loss.clone(), "loss_window": [v.clone() for v in self.loss_window],
                "loss_sum": None if self.loss_sum is None else self.loss_sum.clone(),
                "initial_lrs": dict(self._initial_lrs),
                "converged": None if self._converged is None else [r.name for r in self._converged.reasons]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("outer_step", "num_below_tolerance", "num_max_rho", "inner_step", "num_lr_updates",
                    "last_lr_update_step", "last_best_step"):
            setattr(self, key, int(state[key]))
        self.last_accepted_penalty = _as_tensor(state["last_accepted_penalty"]).clone()
        self.best_loss = _as_tensor(state["best_loss"]).clone()
        self.loss_window = deque((_as_tensor(v).clone() for v in state["loss_window"]),
                                 maxlen=self.config.aggregation_period)
        self.loss_sum = None if state["loss_sum"] is None else _as_tensor(state["loss_sum"]).clone()
        self._initial_lrs = {str(k): float(v) for k, v in state["initial_lrs"].items()}
        reasons = state["converged"]
        self._converged = None if reasons is None else \
            StepResult(True, (InnerReason[reasons[0]], OuterReason[reasons[1]]))


def __getattr__(name: str) -> Any:
    """`AugLagLRCallback`/`AuglagLRCallback` import Lightning only when asked for."""
    if name in ("AugLagLRCallback", "AuglagLRCallback"):
        from alm_bench.auglag_lightning import AugLagLRCallback

        return AugLagLRCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The callback names stay out of __all__ so that `import *` never needs Lightning.
__all__ = ["AugLagLRConfig", "AugLagLR", "AugLagLossCalculator", "InnerReason", "OuterReason", "StepResult",
           "AugLagInnerConvergenceReason", "AugLagOuterConvergenceReason", "AugLagConvergenceReasonTuple"]
