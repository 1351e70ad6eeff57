"""What every conic solver loop yields per iteration, so that one harness (conic/measure.py) measures them all
the same way. Its own module: the solvers import it, the harness imports the solvers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


@dataclass
class ConicIterate:
    """One iteration's primal point X (through A(X) - b and <C, X>), its dual point y with the smallest
    eigenvalue of C - A^*(y) the solver found (a Ritz value: an overestimate), and a low-rank factor
    V with X ~ V V^T for rounding and for a feasible rescaled primal (or None)."""

    objective: float                 # <C, X>
    residual: Tensor                 # A(X) - b
    y: Tensor
    lambda_min: float
    factor: Tensor | None = None
    dual_value: float | None = None   # set by solvers whose dual function is exact (the LP): used as is
    # How far above lambda_min the solver's value may be, where it knows (a Ritz value's residual^2 / gap; inf
    # for the mixing method's estimate on a basis from an earlier y): confirming a claim then tests that far
    # below it first, not a point next to it that an inexact value nearly always misses (conic/measure.py).
    lambda_error: float | None = None
    row: dict[str, Any] = field(default_factory=dict)   # solver-specific trace columns
    # The loop's state after this iteration (tensors and plain values, copies of anything the loop changes in
    # place): passed back to the loop's `iterate(..., start=state)`, it continues exactly from here.
    state: dict[str, Any] | None = None
