"""Baseline SDP solvers, run on the same problems and measured by the same code as BALA.

`MixingMethod`: Wang, Chang & Kolter's block-coordinate Burer-Monteiro method for diag(X) = b SDPs
(Max-Cut), v_i <- -sqrt(b_i) normalize(sum_{j != i} C_ij v_j): the simple peer that is hardest to beat.
`SCSSolver`: the `scs` package (splitting conic solver) on the dual form max b.y s.t. C - A^*(y) PSD.
Their loops are alm_bench/runners/conic_mixing.py and conic_scs.py.
"""

from __future__ import annotations

from typing import Any

from alm_bench.errors import require, require_positive


class MixingMethod:
    accepts = ("conic",)

    def __init__(self, rank: int | None = None, max_iterations: int = 2000, check_every: int = 5,
                 time_limit_s: float | None = None) -> None:
        require(rank is None or (isinstance(rank, int) and rank >= 1), "controller.rank",
                "an integer >= 1 or null (ceil(sqrt(2n)) + 1)", rank)
        require(isinstance(max_iterations, int) and max_iterations >= 1, "controller.max_iterations",
                "an integer >= 1", max_iterations)
        require(isinstance(check_every, int) and check_every >= 1, "controller.check_every",
                "an integer >= 1", check_every)
        if time_limit_s is not None:
            require_positive("controller.time_limit_s", time_limit_s)
        self.rank, self.max_iterations, self.check_every, self.time_limit_s = rank, max_iterations, check_every, time_limit_s
        self.sweeps = 0

    def state_dict(self) -> dict[str, Any]:
        return {"sweeps": self.sweeps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sweeps = int(state["sweeps"])


class SCSSolver:
    accepts = ("conic",)
    max_iterations = 1  # one call to SCS: one trace row

    def __init__(self, eps: float | None = None, max_iters: int = 100_000, time_limit_s: float | None = 900.0,
                 acceleration_lookback: int = 10, verbose: bool = False) -> None:
        if eps is not None:
            require_positive("controller.eps", eps)
        require(isinstance(max_iters, int) and max_iters >= 1, "controller.max_iters", "an integer >= 1", max_iters)
        if time_limit_s is not None:
            require_positive("controller.time_limit_s", time_limit_s)
        self.eps, self.max_iters, self.time_limit_s = eps, max_iters, time_limit_s
        self.acceleration_lookback, self.verbose = acceleration_lookback, bool(verbose)
        self.info: dict[str, Any] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"info": dict(self.info)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.info = dict(state["info"])
