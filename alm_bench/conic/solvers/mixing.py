"""The mixing method (Wang, Chang & Kolter 2017) on a diag(X) = b SDP, with the same certificate as BALA.

One sweep updates every row of V in turn: v_i <- -sqrt(b_i) g_i / |g_i|, g_i = sum_{j != i} C_ij v_j.
Every `check_every` sweeps the stationarity multipliers y_i = (C V)_i . v_i / b_i and the smallest
eigenvalue of C - Diag(y) give the dual point and its bound. Plain numpy on the CPU (a baseline): the simple
peer that is hardest to beat on Max-Cut.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from alm_bench.conic.eigen import CHECK_TOL, BlockLOBPCG
from alm_bench.conic.iterate import ConicIterate
from alm_bench.conic.problems import ConicSDP, factor_rank
from alm_bench.controllers.base import StateDictMixin
from alm_bench.errors import UserError, require, require_int, require_positive
from alm_bench.runners import RunContext


@dataclass
class MixingState:
    sweeps: int = 0


class MixingMethod(StateDictMixin):
    """The mixing method's settings (controller=mixing): the factor's rank and how many sweeps per check."""

    accepts = ("conic",)
    resumes = ("conic",)

    def __init__(self, rank: int | None = None, max_iterations: int = 2000, check_every: int = 5,
                 time_limit_s: float | None = None) -> None:
        require(rank is None or (isinstance(rank, int) and not isinstance(rank, bool) and rank >= 1),
                "controller.rank", "an integer >= 1 or null (ceil(sqrt(2n)) + 1)", rank)
        require_int("controller.max_iterations", max_iterations)
        require_int("controller.check_every", check_every)
        if time_limit_s is not None:
            require_positive("controller.time_limit_s", time_limit_s)
        self.rank, self.max_iterations, self.check_every, self.time_limit_s = rank, max_iterations, check_every, time_limit_s
        self.state = MixingState()


def sweep(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, v: np.ndarray, radius: np.ndarray) -> None:
    """One in-place Gauss-Seidel pass over the rows (C without its diagonal, as CSR)."""
    for i in range(v.shape[0]):
        lo, hi = indptr[i], indptr[i + 1]
        if lo == hi:
            continue
        g = data[lo:hi] @ v[indices[lo:hi]]
        norm = math.sqrt(g @ g)
        if norm > 0:
            v[i] = g * (-radius[i] / norm)


def iterate(problem: ConicSDP, ctl: MixingMethod, ctx: RunContext, start: dict | None = None) -> Iterator[ConicIterate]:
    if not problem.has_diagonal_constraints():
        raise UserError(f"controller=mixing solves SDPs whose constraints are diag(X) = b (Max-Cut); "
                        f"{problem.source} has other constraints: use controller=bala or classic_alm")
    problem.to(torch.device("cpu"))
    c = problem.c_op.matrix.tocsr()
    off = c - sp.diags(c.diagonal())
    off.eliminate_zeros()
    off.sort_indices()
    b = problem.b_np
    radius = np.sqrt(np.clip(b, 0, None))
    rank = ctl.rank or factor_rank(problem.m, problem.n)
    oracle = BlockLOBPCG(problem.n, torch.device("cpu"), seed=ctx.seed)
    if start is not None:  # a checkpoint: the factor, the sweep count, the oracle's block
        v = start["v"].numpy().copy()
        ctl.load_state_dict(start["controller"])
        oracle.load_state_dict(start["oracle"])
    else:
        v = np.random.default_rng(ctx.seed).standard_normal((problem.n, rank))
        v *= (radius / np.linalg.norm(v, axis=1))[:, None]
    scale = problem.slack(problem.initial_dual()).gershgorin()
    while True:
        t0 = time.perf_counter()
        for _ in range(ctl.check_every):
            sweep(off.indptr, off.indices, off.data, v, radius)
            ctl.state.sweeps += 1
        sweep_time = time.perf_counter() - t0
        cv = c @ v
        objective = float((cv * v).sum())
        y = (cv * v).sum(axis=1) / np.where(b != 0, b, 1.0)
        y_t = torch.from_numpy(y)
        t1 = time.perf_counter()
        found = oracle(problem.slack(y_t), 1, 16, CHECK_TOL * scale)
        residual = torch.from_numpy((v * v).sum(axis=1) - b)
        factor = torch.from_numpy(v.copy())   # sweeps change v in place
        yield ConicIterate(objective=objective, residual=residual, y=y_t, lambda_min=float(found.values[0]),
                           factor=factor,
                           state={"v": factor, "controller": ctl.state_dict(), "oracle": oracle.state_dict()},
                           row={"sweeps": ctl.state.sweeps, "rank": rank, "eig_iters": found.iterations,
                                "eig_fallbacks": oracle.fallbacks, "sweep_s": sweep_time,
                                "oracle_s": time.perf_counter() - t1})
