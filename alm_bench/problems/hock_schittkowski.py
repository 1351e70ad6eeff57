"""A few Hock–Schittkowski test problems (Hock & Schittkowski 1981) with their published optima.

Constraints are written in our convention: h(x) = 0 and g(x) <= 0 (the collection writes c(x) >= 0,
so g = -c). Each optimum below was cross-checked with scipy's SLSQP (tests/test_problems.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from alm_bench.errors import ConfigError
from alm_bench.problems.base import Constraint, SmoothProblem


@dataclass(frozen=True)
class HSDefinition:
    x0: tuple[float, ...]
    objective: Callable[[Tensor], Tensor]
    constraints: tuple[tuple[str, str, Callable[[Tensor], Tensor]], ...]
    f_star: float
    x_star: tuple[float, ...]


def _stack(*parts: Tensor) -> Tensor:
    return torch.stack(list(parts))


def _bounds(lo: float | None, hi: float | None) -> Callable[[Tensor], Tensor]:
    def g(x: Tensor) -> Tensor:
        parts = ([lo - x] if lo is not None else []) + ([x - hi] if hi is not None else [])
        return torch.cat(parts)

    return g


HS: dict[str, HSDefinition] = {
    "hs035": HSDefinition(
        x0=(0.5, 0.5, 0.5),
        objective=lambda x: 9 - 8 * x[0] - 6 * x[1] - 4 * x[2] + 2 * x[0] ** 2 + 2 * x[1] ** 2 + x[2] ** 2
        + 2 * x[0] * x[1] + 2 * x[0] * x[2],
        constraints=(
            ("sum", "ineq", lambda x: x[0] + x[1] + 2 * x[2] - 3),
            ("x>=0", "ineq", _bounds(0.0, None)),
        ),
        f_star=1.0 / 9.0,
        x_star=(4 / 3, 7 / 9, 4 / 9),
    ),
    "hs039": HSDefinition(
        x0=(2.0, 2.0, 2.0, 2.0),
        objective=lambda x: -x[0],
        constraints=(
            ("c1", "eq", lambda x: x[1] - x[0] ** 3 - x[2] ** 2),
            ("c2", "eq", lambda x: x[0] ** 2 - x[1] - x[3] ** 2),
        ),
        f_star=-1.0,
        x_star=(1.0, 1.0, 0.0, 0.0),
    ),
    "hs040": HSDefinition(
        x0=(0.8, 0.8, 0.8, 0.8),
        objective=lambda x: -x[0] * x[1] * x[2] * x[3],
        constraints=(
            ("c1", "eq", lambda x: x[0] ** 3 + x[1] ** 2 - 1),
            ("c2", "eq", lambda x: x[0] ** 2 * x[3] - x[2]),
            ("c3", "eq", lambda x: x[3] ** 2 - x[1]),
        ),
        f_star=-0.25,
        x_star=(2 ** (-1 / 3), 2 ** (-1 / 2), 2 ** (-11 / 12), 2 ** (-1 / 4)),
    ),
    "hs043": HSDefinition(  # Rosen–Suzuki
        x0=(0.0, 0.0, 0.0, 0.0),
        objective=lambda x: x[0] ** 2 + x[1] ** 2 + 2 * x[2] ** 2 + x[3] ** 2
        - 5 * x[0] - 5 * x[1] - 21 * x[2] + 7 * x[3],
        constraints=(
            ("c", "ineq", lambda x: _stack(
                x[0] ** 2 + x[1] ** 2 + x[2] ** 2 + x[3] ** 2 + x[0] - x[1] + x[2] - x[3] - 8,
                x[0] ** 2 + 2 * x[1] ** 2 + x[2] ** 2 + 2 * x[3] ** 2 - x[0] - x[3] - 10,
                2 * x[0] ** 2 + x[1] ** 2 + x[2] ** 2 + 2 * x[0] - x[1] - x[3] - 5,
            )),
        ),
        f_star=-44.0,
        x_star=(0.0, 1.0, 2.0, -1.0),
    ),
    "hs071": HSDefinition(
        x0=(1.0, 5.0, 5.0, 1.0),
        objective=lambda x: x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2],
        constraints=(
            ("product", "ineq", lambda x: 25 - x[0] * x[1] * x[2] * x[3]),
            ("sphere", "eq", lambda x: (x**2).sum() - 40),
            ("1<=x<=5", "ineq", _bounds(1.0, 5.0)),
        ),
        f_star=17.0140173,
        x_star=(1.0, 4.7429994, 3.8211503, 1.3794082),
    ),
    "hs076": HSDefinition(
        x0=(0.5, 0.5, 0.5, 0.5),
        objective=lambda x: x[0] ** 2 + 0.5 * x[1] ** 2 + x[2] ** 2 + 0.5 * x[3] ** 2 - x[0] * x[2]
        + x[2] * x[3] - x[0] - 3 * x[1] + x[2] - x[3],
        constraints=(
            ("c", "ineq", lambda x: _stack(
                x[0] + 2 * x[1] + x[2] + x[3] - 5,
                3 * x[0] + x[1] + 2 * x[2] - x[3] - 4,
                -x[1] - 4 * x[2] + 1.5,
            )),
            ("x>=0", "ineq", _bounds(0.0, None)),
        ),
        f_star=-103.0 / 22.0,
        x_star=(3 / 11, 23 / 11, 0.0, 6 / 11),
    ),
    "hs100": HSDefinition(
        x0=(1.0, 2.0, 0.0, 4.0, 0.0, 1.0, 1.0),
        objective=lambda x: (x[0] - 10) ** 2 + 5 * (x[1] - 12) ** 2 + x[2] ** 4 + 3 * (x[3] - 11) ** 2
        + 10 * x[4] ** 6 + 7 * x[5] ** 2 + x[6] ** 4 - 4 * x[5] * x[6] - 10 * x[5] - 8 * x[6],
        constraints=(
            ("c", "ineq", lambda x: _stack(
                2 * x[0] ** 2 + 3 * x[1] ** 4 + x[2] + 4 * x[3] ** 2 + 5 * x[4] - 127,
                7 * x[0] + 3 * x[1] + 10 * x[2] ** 2 + x[3] - x[4] - 282,
                23 * x[0] + x[1] ** 2 + 6 * x[5] ** 2 - 8 * x[6] - 196,
                4 * x[0] ** 2 + x[1] ** 2 - 3 * x[0] * x[1] + 2 * x[2] ** 2 + 5 * x[5] - 11 * x[6],
            )),
        ),
        f_star=680.6300573,
        x_star=(2.330499, 1.951372, -0.4775414, 4.365726, -0.6244870, 1.038131, 1.594227),
    ),
}


class HockSchittkowski(SmoothProblem):
    """problem=hs with problem.name one of HS's keys."""

    def __init__(self, name: str = "hs071") -> None:
        key = str(name).lower()
        if key not in HS:
            raise ConfigError(f"problem.name must be one of {', '.join(HS)}, got {name!r}")
        self.name = key
        self.definition = HS[key]

    def initial_point(self) -> Tensor:
        return torch.tensor(self.definition.x0, dtype=torch.float64)

    def objective(self, x: Tensor) -> Tensor:
        return self.definition.objective(x)

    def constraints(self) -> list[Constraint]:
        return [Constraint(n, k, fn) for n, k, fn in self.definition.constraints]  # type: ignore[arg-type]

    def reference(self) -> dict:
        return {"objective": self.definition.f_star, "x": list(self.definition.x_star)}

    def summary_fields(self, x: Tensor) -> dict:
        return {**super().summary_fields(x), "reference_objective": self.definition.f_star}
