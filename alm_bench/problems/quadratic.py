"""Convex quadratic programs: the seed's toy  min x^2 s.t. x >= 3,  and random QPs with a known solution.

A random instance is built backwards from its KKT conditions, so its solution is exact by construction:
draw Q (well conditioned), A, G, a solution x*, multipliers lambda* (free) and mu* (> 0 on the active
inequalities, 0 elsewhere), then set b = A x*, h = G x* (+ slack where inactive) and
c = -(Q x* + A^T lambda* + G^T mu*). Strict convexity makes x* the unique minimiser.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from alm_bench.errors import ConfigError, require, require_int
from alm_bench.problems.base import Constraint, SmoothProblem

INSTANCES = ("toy", "random")


class QuadraticProgram(SmoothProblem):
    """min 1/2 x^T Q x + c^T x  s.t.  A x = b,  G x <= h."""

    def __init__(
        self,
        instance: str = "toy",
        dim: int = 20,
        n_eq: int = 5,
        n_ineq: int = 10,
        condition: float = 10.0,
        instance_seed: int = 0,
    ) -> None:
        if instance not in INSTANCES:
            raise ConfigError(f"problem.instance must be one of {', '.join(INSTANCES)}, got {instance!r}")
        self.instance = instance
        if instance == "toy":
            self.name = "quadratic-toy"
            self._toy()
            return
        require_int("problem.dim", dim)
        require_int("problem.n_eq", n_eq, minimum=0)
        require_int("problem.n_ineq", n_ineq, minimum=0)
        require(condition >= 1, "problem.condition", ">= 1", condition)
        n_active = (n_ineq + 1) // 2
        require(n_eq + n_active < dim, "problem.n_eq + ceil(problem.n_ineq/2)", f"< problem.dim = {dim}", n_eq + n_active)
        self.name = f"quadratic-random-{dim}"
        self._random(dim, n_eq, n_ineq, n_active, condition, instance_seed)

    def _toy(self) -> None:
        t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
        self.Q, self.c = t([[2.0]]), t([0.0])
        self.A, self.b = t([[0.0]])[:0], t([0.0])[:0]
        self.G, self.h = t([[-1.0]]), t([-3.0])  # -x <= -3
        self.x_star, self.f_star = t([3.0]), 9.0

    def _random(self, n: int, m: int, p: int, n_active: int, condition: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        u, _ = np.linalg.qr(rng.standard_normal((n, n)))
        Q = u @ np.diag(np.logspace(0, np.log10(condition), n)) @ u.T
        A = rng.standard_normal((m, n)) / np.sqrt(n)
        G = rng.standard_normal((p, n)) / np.sqrt(n)
        x_star = rng.standard_normal(n)
        lam = rng.standard_normal(m)
        mu = np.zeros(p)
        mu[:n_active] = rng.uniform(0.5, 2.0, n_active)
        slack = np.zeros(p)
        slack[n_active:] = rng.uniform(0.5, 1.5, p - n_active)
        c = -(Q @ x_star + A.T @ lam + G.T @ mu)
        t = lambda v: torch.as_tensor(v, dtype=torch.float64)  # noqa: E731
        self.Q, self.c, self.A, self.b = t((Q + Q.T) / 2), t(c), t(A), t(A @ x_star)
        self.G, self.h = t(G), t(G @ x_star + slack)
        self.x_star = t(x_star)
        self.f_star = float(0.5 * x_star @ Q @ x_star + c @ x_star)

    def initial_point(self) -> Tensor:
        return torch.zeros_like(self.c)

    def objective(self, x: Tensor) -> Tensor:
        Q, c = self.Q.to(x), self.c.to(x)
        return 0.5 * x @ (Q @ x) + c @ x

    def constraints(self) -> list[Constraint]:
        out = []
        if self.A.shape[0]:
            out.append(Constraint("Ax=b", "eq", lambda x: self.A.to(x) @ x - self.b.to(x)))
        if self.G.shape[0]:
            out.append(Constraint("Gx<=h", "ineq", lambda x: self.G.to(x) @ x - self.h.to(x)))
        return out

    def reference(self) -> dict:
        return {"objective": self.f_star, "x": self.x_star.tolist()}

    def summary_fields(self, x: Tensor) -> dict:
        x = x.detach().cpu().to(torch.float64)
        return {
            **super().summary_fields(x),
            "reference_objective": self.f_star,
            "x_error": float((x - self.x_star).abs().max()),
        }
