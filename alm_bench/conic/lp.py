"""A linear program over a compact set: min c.x  s.t.  A x = b,  x in Omega, with Omega a box
{lower <= x <= upper} or a capped simplex {x >= 0, sum x <= radius}. Its linear-minimisation oracle is
closed-form, which is all BALA's LP variant needs. The default is the 2-D example of the BALA slides:
min x1 + x2  s.t.  2 x1 + x2 = 1,  x >= 0,  |x|_1 <= 1, whose optimum is x = (1/2, 0), value 1/2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from alm_bench.errors import ConfigError, require, require_positive


class BoxLP:
    kind = "conic"

    def __init__(self, c: list[float] = (1.0, 1.0), a: list[list[float]] = ((2.0, 1.0),), b: list[float] = (1.0,),
                 omega: str = "simplex", lower: float | list[float] = 0.0, upper: float | list[float] = 1.0,
                 radius: float = 1.0, tol: float = 1e-6, reference_objective: float | None = 0.5,
                 name: str = "lp") -> None:
        self.c_np = np.asarray(c, dtype=np.float64)
        self.a_np = np.atleast_2d(np.asarray(a, dtype=np.float64))
        self.b_np = np.asarray(b, dtype=np.float64)
        n = self.c_np.size
        require(n >= 1 and self.c_np.ndim == 1, "problem.c", "a non-empty list of numbers", list(c))
        if self.a_np.shape != (self.b_np.size, n):
            raise ConfigError(f"problem.a must be {self.b_np.size} x {n} (len(b) x len(c)), got {self.a_np.shape}")
        for field, value in (("c", self.c_np), ("a", self.a_np), ("b", self.b_np)):
            require(bool(np.isfinite(value).all()), f"problem.{field}", "finite numbers", value.tolist())
        require(omega in ("box", "simplex"), "problem.omega", "'box' or 'simplex'", omega)
        require_positive("problem.tol", tol)
        self.omega, self.tol, self.name = omega, float(tol), name
        self.lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,)).copy()
        self.upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)).copy()
        if omega == "box":
            require(bool((self.lower <= self.upper).all()), "problem.upper", ">= problem.lower", upper)
        else:
            require_positive("problem.radius", radius)
        self.radius = float(radius)
        self.reference_objective = reference_objective
        self.n, self.m = n, self.b_np.size
        self.c_norm = float(np.linalg.norm(self.c_np))
        self.to(torch.device("cpu"))

    def to(self, device: torch.device) -> "BoxLP":
        t = lambda x: torch.as_tensor(x, dtype=torch.float64, device=device)  # noqa: E731
        self.c, self.a, self.b, self.lo, self.hi = t(self.c_np), t(self.a_np), t(self.b_np), t(self.lower), t(self.upper)
        self.device = torch.device(device)
        return self

    def minimize_linear(self, d: Tensor) -> Tensor:
        """argmin_{x in Omega} d.x (the oracle)."""
        if self.omega == "box":
            return torch.where(d < 0, self.hi, self.lo)
        v = torch.zeros_like(d)
        i = int(torch.argmin(d))
        if float(d[i]) < 0:
            v[i] = self.radius
        return v

    def dual_function(self, y: Tensor) -> tuple[float, Tensor]:
        """g(y) = -b.y - min_Omega (c - A^T y).x, and the minimiser v."""
        reduced = self.c - self.a.T @ y
        v = self.minimize_linear(reduced)
        return -float(self.b @ y) - float(reduced @ v), v

    def report_value(self, objective: float) -> float:
        return objective

    def summary_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"omega": self.omega}
        if self.reference_objective is not None:
            out["reference_objective"] = self.reference_objective
        return out
