"""Problems for fault-injection tests, loaded by `problem=custom problem._target_=fault_problems.X`."""

from __future__ import annotations

import time

import torch

from alm_bench.problems import Constraint, SmoothProblem


class SlowToy(SmoothProblem):
    """The seed toy min x^2 s.t. x >= 3, slowed down so a test can signal it mid-run."""

    name = "slow-toy"

    def __init__(self, seconds_per_evaluation: float = 0.02) -> None:
        self.delay = seconds_per_evaluation

    def initial_point(self):
        return torch.zeros(1, dtype=torch.float64)

    def objective(self, x):
        time.sleep(self.delay)
        return x[0] ** 2

    def constraints(self):
        return [Constraint("x>=3", "ineq", lambda x: 3 - x)]
