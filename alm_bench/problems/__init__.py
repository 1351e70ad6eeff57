from alm_bench.problems.base import Constraint, Evaluation, SmoothProblem, evaluate, max_violation

__all__ = ["Constraint", "Evaluation", "SmoothProblem", "evaluate", "max_violation"]
