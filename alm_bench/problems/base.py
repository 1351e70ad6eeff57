"""What a problem is. Problems state objective and constraints; they know nothing of controllers.

A *smooth* problem is   min f(x)  s.t.  h(x) = 0 (kind "eq"),  g(x) <= 0 (kind "ineq"),  x in R^n,
with f, h, g differentiable torch functions. To plug in your own, subclass `SmoothProblem`,
implement `initial_point`, `objective` and `constraints`, and point `problem._target_` at the class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import Tensor

ConstraintKind = Literal["eq", "ineq"]


@dataclass(frozen=True)
class Constraint:
    """One (possibly vector-valued) constraint: fn(x) == 0 for "eq", fn(x) <= 0 for "ineq"."""

    name: str
    kind: ConstraintKind
    fn: Callable[[Tensor], Tensor]

    def __post_init__(self) -> None:
        if self.kind not in ("eq", "ineq"):
            raise ValueError(f"constraint {self.name!r}: kind must be 'eq' or 'ineq', got {self.kind!r}")


class SmoothProblem(ABC):
    """A deterministic, differentiable constrained problem over one tensor of variables."""

    kind = "smooth"
    name: str = "problem"
    dtype: torch.dtype = torch.float64

    @abstractmethod
    def initial_point(self) -> Tensor:
        """The starting point x0 (a 1-D tensor)."""

    @abstractmethod
    def objective(self, x: Tensor) -> Tensor:
        """f(x), a scalar tensor."""

    @abstractmethod
    def constraints(self) -> list[Constraint]:
        """The constraints, each an equality or an inequality; may be empty."""

    def reference(self) -> dict:
        """Known solution, if any: {"objective": f*, "x": [...]}. Used for reporting only."""
        return {}

    def summary_fields(self, x: Tensor) -> dict:
        """Problem-specific fields for summary.json (the solution itself, for small problems)."""
        return {"x": x.detach().cpu().tolist()} if x.numel() <= 1000 else {}


@dataclass
class Evaluation:
    """f, h (all equalities stacked), g (all inequalities stacked) at one point."""

    objective: Tensor
    eq: Tensor
    ineq: Tensor


def constraint_names(problem: SmoothProblem, x: Tensor) -> tuple[list[str], list[str]]:
    """Names of every scalar equality and inequality, in the stacking order of `evaluate`."""
    eq, ineq = [], []
    for c in problem.constraints():
        size = c.fn(x).numel()
        names = [c.name] if size == 1 else [f"{c.name}[{i}]" for i in range(size)]
        (eq if c.kind == "eq" else ineq).extend(names)
    return eq, ineq


def evaluate(problem: SmoothProblem, x: Tensor) -> Evaluation:
    eq: list[Tensor] = []
    ineq: list[Tensor] = []
    for c in problem.constraints():
        (eq if c.kind == "eq" else ineq).append(c.fn(x).reshape(-1))
    empty = x.new_zeros(0)
    return Evaluation(
        objective=problem.objective(x).reshape(()),
        eq=torch.cat(eq) if eq else empty,
        ineq=torch.cat(ineq) if ineq else empty,
    )


def relative_error(value: float, reference: float) -> float:
    """|value - reference| / max(1, |reference|): relative, but absolute near a zero optimum."""
    return abs(value - reference) / max(1.0, abs(reference))


def max_violation(eq: Tensor, ineq: Tensor) -> float:
    """max(|h|_inf, |max(g, 0)|_inf): zero exactly when feasible."""
    parts = [eq.abs().max()] if eq.numel() else []
    if ineq.numel():
        parts.append(ineq.clamp(min=0).max())
    return float(torch.stack(parts).max()) if parts else 0.0


def best_multiplier_stationarity(problem: SmoothProblem, x: Tensor, active_tol: float) -> float:
    """|grad f + J_h^T lam + J_g^T mu|_inf at x with the multipliers that fit best (lam free, mu >= 0, and
    mu_i = 0 where g_i(x) < -active_tol): the first-order test of a final point for a controller that keeps
    no multipliers of its own (AugLagLR keeps one alpha for a summed penalty), so that `converged` means
    the same thing whatever produced x."""
    from scipy.optimize import lsq_linear  # only smooth runs of such controllers pay for scipy

    z = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(problem.objective(z).reshape(()), z)
    columns = []
    with torch.no_grad():
        e = evaluate(problem, z)
    bounds_low = []
    for kind, values in (("eq", e.eq), ("ineq", e.ineq)):
        if not values.numel():
            continue
        jac = torch.autograd.functional.jacobian(
            lambda v, kind=kind: getattr(evaluate(problem, v), kind), z).reshape(values.numel(), -1)
        keep = torch.ones_like(values, dtype=torch.bool) if kind == "eq" else values >= -active_tol
        columns.append(jac[keep])
        bounds_low += [-float("inf") if kind == "eq" else 0.0] * int(keep.sum())
    g = grad.detach().cpu().double().numpy()
    if not bounds_low:
        return float(abs(g).max()) if g.size else 0.0
    a = torch.cat(columns).T.detach().cpu().double().numpy()
    fit = lsq_linear(a, -g, bounds=(bounds_low, [float("inf")] * len(bounds_low)))
    return float(abs(a @ fit.x + g).max())
