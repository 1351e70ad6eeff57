"""SCS on a conic problem, in the dual form (far fewer variables than the primal svec(X)):

    max b.y  s.t.  C - A^*(y) PSD     ->  SCS:  min -b.y  s.t.  svec(A^*(e_k)) y + s = svec(C),  s in PSD

SCS's dual variable of the PSD cone is svec(X). Its own stopping test runs at eps = problem.tol (or
controller.eps); our code then measures eps_p, eps_d, eps_g of the (X, y) it returns, as for every solver.
svec follows SCS 3: lower triangle, column by column, off-diagonal entries times sqrt 2.

SCS runs in a child process: its C loop never returns to Python, so neither Ctrl-C nor SIGTERM would stop it
(a G60 run overshot its own time limit by 35 minutes, one dense eigendecomposition an iteration). The child
makes calls of `trace_every` SCS iterations each, warm-started from the last (SCS keeps its own solution across
calls), and sends each call's (x, y, s) back for a trace row; a signal to the run kills the child at once.
`trace_every: null` makes one call, exactly SCS's own run (the benchmark's choice).
"""

from __future__ import annotations

import math
import multiprocessing
import signal
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
from alm_bench.runners.stopping import SolverFailed


@dataclass
class SCSState:
    info: dict[str, Any] = field(default_factory=dict)   # SCS's status, iterations and solve time


class SCSSolver(StateDictMixin):
    """SCS's settings (controller=scs). Its state lives in its child process, so it keeps no checkpoint to resume
    from."""

    accepts = ("conic",)
    resumes = ()

    def __init__(self, eps: float | None = None, max_iters: int = 100_000, time_limit_s: float | None = 900.0,
                 trace_every: int | None = 25, acceleration_lookback: int = 10, verbose: bool = False) -> None:
        if eps is not None:
            require_positive("controller.eps", eps)
        require_int("controller.max_iters", max_iters)
        if trace_every is not None:
            require_int("controller.trace_every", trace_every)
        if time_limit_s is not None:
            require_positive("controller.time_limit_s", time_limit_s)
        self.eps, self.max_iters, self.time_limit_s, self.trace_every = eps, max_iters, time_limit_s, trace_every
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


def _solve_in_child(conn, data: dict, cone: dict, settings: dict, max_iters: int, time_limit_s: float | None,
                    per_call: int) -> None:
    """The child: SCS in calls of `per_call` iterations until SCS stops on its own, the iterations or the time run
    out; each call's solution goes back through `conn`."""
    for sig in (signal.SIGINT, signal.SIGTERM):   # the parent decides when to stop; a signal here ends at once
        signal.signal(sig, signal.SIG_DFL)
    import scs

    start = time.perf_counter()
    solver = scs.SCS(data, cone, **settings, max_iters=per_call)
    used = 0
    while True:
        sol = solver.solve(warm_start=used > 0)
        info = sol["info"]
        used += int(info["iter"])
        elapsed = time.perf_counter() - start
        out_of_budget = used >= max_iters or (time_limit_s is not None and elapsed >= time_limit_s)
        final = int(info["iter"]) < per_call or out_of_budget   # a call cut by its iterations goes on
        conn.send({"x": sol["x"], "y": sol["y"], "status": info["status"], "iterations": used,
                   "solve_s": elapsed, "final": final, "peak_rss_mb": _own_peak_mb()})
        if final:
            conn.close()
            return


def _own_peak_mb() -> float:
    """This process's own peak resident memory (Linux's VmHWM; NaN elsewhere): the child's is SCS's."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return math.nan


def _child_results(ctl: SCSSolver, data: dict, cone: dict, settings: dict) -> Iterator[dict]:
    """Each call's solution from the child process; the child is killed when the caller stops (a signal raises
    KeyboardInterrupt in this process, the harness has converged) or it dies."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    mp = multiprocessing.get_context(method)
    receive, send = mp.Pipe(duplex=False)
    per_call = ctl.max_iters if ctl.trace_every is None else min(ctl.trace_every, ctl.max_iters)
    child = mp.Process(target=_solve_in_child, daemon=True,
                       args=(send, data, cone, settings, ctl.max_iters, ctl.time_limit_s, per_call))
    child.start()
    send.close()
    try:
        while True:
            while not receive.poll(0.1):   # short waits: a signal is handled between them
                if not child.is_alive() and not receive.poll(0):
                    raise SolverFailed(f"SCS's process ended without a result (exit code {child.exitcode}; "
                                       f"out of memory?)")
            result = receive.recv()
            yield result
            if result["final"]:
                return
    finally:
        if child.is_alive():
            child.terminate()
            child.join(1.0)
            if child.is_alive():
                child.kill()
        child.join()
        receive.close()


def iterate(problem: ConicSDP, ctl: SCSSolver, ctx: RunContext) -> Iterator[ConicIterate]:
    try:
        import scs  # noqa: F401  (the child imports it again: a missing package is one line here)
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
    settings = dict(eps_abs=eps, eps_rel=eps, verbose=ctl.verbose, acceleration_lookback=ctl.acceleration_lookback)
    if ctl.time_limit_s is not None:
        settings["time_limit_secs"] = float(ctl.time_limit_s)
    data = {"A": a, "b": b_scs, "c": -problem.b_np}
    for result in _child_results(ctl, data, {"s": [n]}, settings):
        ctl.state.info = {"status": result["status"], "iterations": result["iterations"],
                          "solve_time_s": result["solve_s"]}
        y = np.asarray(result["x"])
        x = smat(np.asarray(result["y"]), n)
        x_t = torch.from_numpy(x)
        residual = problem.constraint_values(torch.eye(n, dtype=torch.float64), x_t) - problem.b
        objective = float((problem.c_op.matrix.multiply(x)).sum())
        values, vectors = np.linalg.eigh(x)
        positive = values > 1e-9 * max(values.max(), 1e-300)
        factor = torch.from_numpy(vectors[:, positive] * np.sqrt(values[positive]))
        slack = problem.slack(torch.from_numpy(y)).scipy().toarray()
        lam = float(np.linalg.eigvalsh(slack)[0])
        yield ConicIterate(objective=objective, residual=residual, y=torch.from_numpy(y), lambda_min=lam,
                           factor=factor, row={"scs_status": result["status"], "scs_iterations": result["iterations"],
                                               "scs_solve_s": result["solve_s"],
                                               "scs_peak_rss_mb": result["peak_rss_mb"]})
