"""A complete user-defined problem: the point of the disc |x| <= r that is closest to a target,
with x_1 = x_2 pinned by an equality.

    cd examples && alm-bench train problem=custom problem._target_=my_problem.ClosestPointInDisc +problem.radius=2
"""

import torch

from alm_bench.problems import Constraint, SmoothProblem


class ClosestPointInDisc(SmoothProblem):
    name = "closest-point-in-disc"

    def __init__(self, radius: float = 1.0, target: tuple[float, float, float] = (3.0, 1.0, 2.0)) -> None:
        self.radius = radius
        self.target = torch.tensor(target, dtype=torch.float64)

    def initial_point(self) -> torch.Tensor:
        return torch.zeros(3, dtype=torch.float64)

    def objective(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.target) ** 2).sum()

    def constraints(self) -> list[Constraint]:
        return [
            Constraint("disc", "ineq", lambda x: (x**2).sum() - self.radius**2),  # |x|^2 <= r^2
            Constraint("x1=x2", "eq", lambda x: x[0] - x[1]),
        ]

    def reference(self) -> dict:
        # Project the target onto the plane x1 = x2, then scale onto the sphere of radius r.
        p = self.target.clone()
        p[0] = p[1] = (self.target[0] + self.target[1]) / 2
        x = p * self.radius / p.norm()
        return {"x": x.tolist(), "objective": float(((x - self.target) ** 2).sum())}

    def summary_fields(self, x: torch.Tensor) -> dict:
        return {**super().summary_fields(x), "reference_objective": self.reference()["objective"]}
