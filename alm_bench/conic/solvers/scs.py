"""SCS on a conic problem, in the dual form (far fewer variables than the primal svec(X)):

    max b.y  s.t.  C - A^*(y) PSD     ->  SCS:  min -b.y  s.t.  svec(A^*(e_k)) y + s = svec(C),  s in PSD

SCS's dual variable of the PSD cone is svec(X). Its own stopping test runs at eps = problem.tol (or
controller.eps); our code then measures eps_p, eps_d, eps_g of the (X, y) it returns, as for every solver.
svec follows SCS 3: lower triangle, column by column, off-diagonal entries times sqrt 2.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp
import torch

from alm_bench.conic.iterate import ConicIterate
from alm_bench.conic.problems import ConicSDP
from alm_bench.controllers.base import StateDictMixin
from alm_bench.errors import UserError, require_int, require_positive
from alm_bench.runners import RunContext


@dataclass
class SCSState:
    info: dict[str, Any] = field(default_factory=dict)   # SCS's status, iterations and solve time


class SCSSolver(StateDictMixin):
    """SCS's settings (controller=scs); it solves in one call, so it keeps no checkpoint to resume from."""

    accepts = ("conic",)
    resumes = ()
    max_iterations = 1  # one call to SCS: one trace row

    def __init__(self, eps: float | None = None, max_iters: int = 100_000, time_limit_s: float | None = 900.0,
                 acceleration_lookback: int = 10, verbose: bool = False) -> None:
        if eps is not None:
            require_positive("controller.eps", eps)
        require_int("controller.max_iters", max_iters)
        if time_limit_s is not None:
            require_positive("controller.time_limit_s", time_limit_s)
        self.eps, self.max_iters, self.time_limit_s = eps, max_iters, time_limit_s
        self.acceleration_lookback, self.verbose = acceleration_lookback, bool(verbose)
        self.state = SCSState()


def svec_position(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Index of entry (i, j), i >= j, in SCS's column-major lower-triangle svec."""
    return j * n - j * (j - 1) // 2 + (i - j)


def svec_of_triplets(i: np.ndarray, j: np.ndarray, v: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of svec(M) for a symmetric M given with both triangles (keeps i >= j)."""
    lower = i >= j
    i, j, v = i[lower], j[lower], v[lower]
    return svec_position(i, j, n), np.where(i == j, v, v * math.sqrt(2.0))


def smat(x: np.ndarray, n: int) -> np.ndarray:
    j, i = np.triu_indices(n)  # column-major lower triangle: for each column j, rows i >= j
    m = np.zeros((n, n))
    m[i, j] = x / np.where(i == j, 1.0, math.sqrt(2.0))
    return m + np.tril(m, -1).T


def iterate(problem: ConicSDP, ctl: SCSSolver, ctx: RunContext) -> Iterator[ConicIterate]:
    try:
        import scs
    except ImportError:
        raise UserError("controller=scs needs the scs package: pip install 'alm-bench[sdp]' (or pip install scs)") from None
    problem.to(torch.device("cpu"))
    n, m = problem.n, problem.m
    size = n * (n + 1) // 2
    rows, vals = svec_of_triplets(problem._i, problem._j, problem._v, n)
    a = sp.csc_matrix((vals, (rows, problem._k[problem._i >= problem._j])), shape=(size, m))
    coo = problem.c_op.matrix.tocoo()
    c_rows, c_vals = svec_of_triplets(coo.row, coo.col, coo.data, n)
    b_scs = np.zeros(size)
    np.add.at(b_scs, c_rows, c_vals)
    eps = ctl.eps if ctl.eps is not None else problem.tol
    settings = dict(eps_abs=eps, eps_rel=eps, max_iters=ctl.max_iters, verbose=ctl.verbose,
                    acceleration_lookback=ctl.acceleration_lookback)
    if ctl.time_limit_s is not None:
        settings["time_limit_secs"] = float(ctl.time_limit_s)
    t0 = time.perf_counter()
    solver = scs.SCS({"A": a, "b": b_scs, "c": -problem.b_np}, {"s": [n]}, **settings)
    sol = solver.solve()
    solve_time = time.perf_counter() - t0
    info = sol["info"]
    ctl.state.info = {"status": info["status"], "iterations": int(info["iter"]), "solve_time_s": solve_time}
    y = np.asarray(sol["x"])
    x = smat(np.asarray(sol["y"]), n)
    x_t = torch.from_numpy(x)
    residual = problem.constraint_values(torch.eye(n, dtype=torch.float64), x_t) - problem.b
    objective = float((problem.c_op.matrix.multiply(x)).sum())
    values, vectors = np.linalg.eigh(x)
    positive = values > 1e-9 * max(values.max(), 1e-300)
    factor = torch.from_numpy(vectors[:, positive] * np.sqrt(values[positive]))
    slack = problem.slack(torch.from_numpy(y)).scipy().toarray()
    lam = float(np.linalg.eigvalsh(slack)[0])
    yield ConicIterate(objective=objective, residual=residual, y=torch.from_numpy(y), lambda_min=lam, factor=factor,
                       row={"scs_status": info["status"], "scs_iterations": int(info["iter"]),
                            "scs_solve_s": solve_time})
