"""Clarabel (an interior-point solver, Goulart & Chen) on a conic problem, in the dual form:

    max b.y  s.t.  C - A^*(y) in K   ->  Clarabel:  min -b.y  s.t.  svec(A^*(e_k)) y + s = svec(C),  s in K

with K the product of one cone per block of `problem.block_sizes`: a PSD cone `PSDTriangleConeT(n_b)` for
a block of order n_b >= 2 and a nonnegative cone for a diagonal (negative-size) block or a block of order 1,
whose off-diagonal entries appear nowhere (so the block-diagonal embedding of order N = sum |n_b| never
enters the solver). The dual form rather than the primal: its variables are the m multipliers, where the
primal form would have svec(X) as variables plus one cone row per entry of X (a KKT system larger by
sum n_b (n_b + 1) / 2); and the cone rows of the dual form are exactly the sparsity pattern of C - A^*(y),
which is what Clarabel's chordal decomposition exploits (Max-Cut graphs, theta problems).

Clarabel's dual variable of the cone is svec(X). Its own stopping test runs at its tolerances (1e-8 by
default, Clarabel's); our code then measures eps_p, eps_d, eps_g of the (X, y) it returns, as for every
solver. svec here is Clarabel's (checked against a PSD projection): the UPPER triangle, column by column
((0,0), (0,1), (1,1), (0,2), ...; entry (i, j), i <= j, at j (j + 1) / 2 + i), off-diagonal entries times
sqrt 2 -- not SCS's lower-triangle order.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp
import torch

from alm_bench.conic.iterate import ConicIterate
from alm_bench.conic.problems import ConicSDP
from alm_bench.conic.solvers.blocks import Blocks, measured_point
from alm_bench.conic.solvers.child import ended_how, wait_child
from alm_bench.controllers.base import StateDictMixin
from alm_bench.errors import UserError, require_int, require_positive
from alm_bench.runners import RunContext
from alm_bench.runners.stopping import SolverFailed


@dataclass
class ClarabelState:
    info: dict[str, Any] = field(default_factory=dict)   # Clarabel's status, iterations and solve time


class ClarabelSolver(StateDictMixin):
    """Clarabel's settings (controller=clarabel); it solves in one call, so it keeps no checkpoint to resume
    from. Tolerances default to Clarabel's own (1e-8, independent of problem.tol): an interior-point method
    gains the last digits in a step or two, and its scaled residuals are not our eps_p/eps_d/eps_g.

    chordal_decomposition (Clarabel's default, on) splits a sparse PSD cone into its chordal cliques: Max-Cut
    graphs of order 800 need it (maxG11: 21 s), but with Clarabel 0.11.1 it returned a wrong point marked
    Solved on SDPLIB control1 (its own A'z - b off by 0.04; our eps_p 2.4e-2, not converged); off, control1
    is solved to 1e-8."""

    accepts = ("conic",)
    resumes = ()

    def __init__(self, tol_gap_abs: float = 1e-8, tol_gap_rel: float = 1e-8, tol_feas: float = 1e-8,
                 max_iter: int = 200, time_limit_s: float | None = 900.0, chordal_decomposition: bool = True,
                 verbose: bool = False) -> None:
        for name, value in (("tol_gap_abs", tol_gap_abs), ("tol_gap_rel", tol_gap_rel), ("tol_feas", tol_feas)):
            require_positive(f"controller.{name}", value)
        require_int("controller.max_iter", max_iter)
        if time_limit_s is not None:
            require_positive("controller.time_limit_s", time_limit_s)
        self.tol_gap_abs, self.tol_gap_rel, self.tol_feas = float(tol_gap_abs), float(tol_gap_rel), float(tol_feas)
        self.max_iter, self.time_limit_s, self.verbose = max_iter, time_limit_s, bool(verbose)
        self.chordal_decomposition = bool(chordal_decomposition)
        self.state = ClarabelState()


def triangle_position(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of entry (r, c), r <= c, in Clarabel's column-major upper-triangle svec."""
    return c * (c + 1) // 2 + r


class ConeLayout:
    """The rows of the cone constraint: per block, a PSD triangle (order >= 2) or a nonnegative run (its
    diagonal), in block order, consecutive nonnegative runs merged into one cone."""

    def __init__(self, blocks: Blocks) -> None:
        self.blocks = blocks
        self.psd = blocks.psd
        order = np.abs(np.asarray(blocks.sizes))
        length = np.where(self.psd, order * (order + 1) // 2, order)
        self.base = np.concatenate([[0], np.cumsum(length)]).astype(np.int64)
        self.rows = int(self.base[-1])

    def spec(self) -> list[tuple[str, int]]:
        """The cones in row order: ("psd", order) for PSDTriangleConeT, ("nonneg", length) for NonnegativeConeT."""
        cones: list[tuple[str, int]] = []
        run = 0
        for b, size in enumerate(self.blocks.sizes):
            if self.psd[b]:
                if run:
                    cones.append(("nonneg", run))
                    run = 0
                cones.append(("psd", abs(size)))
            else:
                run += abs(size)
        if run:
            cones.append(("nonneg", run))
        return cones

    def svec(self, i: np.ndarray, j: np.ndarray, v: np.ndarray, what: str, source: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows and values of svec(M) for a symmetric M given with both triangles (keeps i <= j)."""
        upper = i <= j
        i, j, v = i[upper], j[upper], v[upper]
        block, r, c = self.blocks.locate(i, j, what, source)
        rows = self.base[block] + np.where(self.psd[block], triangle_position(r, c), r)
        return rows, np.where(r == c, v, v * math.sqrt(2.0))

    def unpack(self, z: np.ndarray) -> list[np.ndarray]:
        """Per block: the dense symmetric matrix (PSD block) or the diagonal (vector) that z holds."""
        out = []
        for b, size in enumerate(self.blocks.sizes):
            part = z[self.base[b]: self.base[b + 1]]
            if not self.psd[b]:
                out.append(part.copy())
                continue
            n = abs(size)
            r, c = np.triu_indices(n)   # every (r, c) with r <= c, read from its place in the svec
            m = np.zeros((n, n))
            m[r, c] = part[triangle_position(r, c)] / np.where(r == c, 1.0, math.sqrt(2.0))
            out.append(m + np.triu(m, 1).T)
        return out


# Clarabel runs in a child process of this interpreter: a Rust allocation failure aborts the whole process
# (Max-Cut G14, n = 800: the chordal cliques of its PSD cone reach order ~250, and each PSD cone holds a dense
# KKT block of order k (k + 1) / 2, 15 GB in one allocation), which in-process would take the run -- and a
# Hydra sweep's other jobs -- down without a summary. The child reads the data from, and writes its solution
# to, a temporary folder; Ctrl-C/SIGTERM stop it (SIGTERM, then SIGKILL), as for CSDP.
CHILD = r"""
import json, os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_DFL)   # Ctrl-C in the terminal stops the solve at once
import numpy as np, scipy.sparse as sp, clarabel
folder = sys.argv[1]
d = np.load(os.path.join(folder, "problem.npz"))
with open(os.path.join(folder, "spec.json")) as f:
    spec = json.load(f)
a = sp.csc_matrix((d["a_data"], d["a_indices"], d["a_indptr"]), shape=tuple(int(s) for s in d["a_shape"]))
cones = [clarabel.PSDTriangleConeT(k) if kind == "psd" else clarabel.NonnegativeConeT(k) for kind, k in spec["cones"]]
settings = clarabel.DefaultSettings()
for key, value in spec["settings"].items():
    setattr(settings, key, value)
t0 = time.perf_counter()
solver = clarabel.DefaultSolver(sp.csc_matrix((a.shape[1], a.shape[1])), d["q"], a, d["rhs"], cones, settings)
sol = solver.solve()
solve_time = time.perf_counter() - t0
np.savez(os.path.join(folder, "solution.npz"), x=np.asarray(sol.x, dtype=float), z=np.asarray(sol.z, dtype=float))
with open(os.path.join(folder, "info.tmp"), "w") as f:
    json.dump({"status": str(sol.status).rsplit(".", 1)[-1], "iterations": int(sol.iterations),
               "solve_time_s": solve_time}, f)
os.replace(os.path.join(folder, "info.tmp"), os.path.join(folder, "info.json"))
"""
SETUP_GRACE_S = 60.0   # past Clarabel's own time limit (which counts its solve only), the child is stopped


def settings_of(ctl: ClarabelSolver) -> dict[str, Any]:
    out: dict[str, Any] = {"verbose": ctl.verbose, "max_iter": int(ctl.max_iter), "tol_gap_abs": ctl.tol_gap_abs,
                           "tol_gap_rel": ctl.tol_gap_rel, "tol_feas": ctl.tol_feas,
                           "chordal_decomposition_enable": ctl.chordal_decomposition}
    if ctl.time_limit_s is not None:
        out["time_limit"] = float(ctl.time_limit_s)
    return out


def iterate(problem: ConicSDP, ctl: ClarabelSolver, ctx: RunContext) -> Iterator[ConicIterate]:
    if importlib.util.find_spec("clarabel") is None:
        raise UserError("controller=clarabel needs the clarabel package: pip install clarabel "
                        "(or pip install 'alm-bench[sdp]')")
    problem.to(torch.device("cpu"))
    m = problem.m
    blocks = Blocks.of(problem)
    layout = ConeLayout(blocks)
    rows, vals = layout.svec(problem._i, problem._j, problem._v, "a constraint matrix", problem.source)
    a = sp.csc_matrix((vals, (rows, problem._k[problem._i <= problem._j])), shape=(layout.rows, m))
    a.sum_duplicates()
    coo = problem.c_op.matrix.tocoo()
    c_rows, c_vals = layout.svec(coo.row, coo.col, coo.data, "C", problem.source)
    rhs = np.zeros(layout.rows)
    np.add.at(rhs, c_rows, c_vals)
    with tempfile.TemporaryDirectory(prefix="alm-bench-clarabel-") as tmp:
        folder = Path(tmp)
        np.savez(folder / "problem.npz", a_data=a.data, a_indices=a.indices, a_indptr=a.indptr,
                 a_shape=np.array(a.shape), q=-problem.b_np, rhs=rhs)
        (folder / "spec.json").write_text(json.dumps({"cones": layout.spec(), "settings": settings_of(ctl)}))
        limit = None if ctl.time_limit_s is None else ctl.time_limit_s + SETUP_GRACE_S
        t0 = time.perf_counter()
        with open(folder / "stderr.txt", "w") as err:
            proc = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)], stdin=subprocess.DEVNULL,
                                    stdout=None if ctl.verbose else subprocess.DEVNULL, stderr=err)
            timed_out = wait_child(proc, limit)
        wall = time.perf_counter() - t0
        stderr = (folder / "stderr.txt").read_text(errors="replace")
        if ctl.verbose and stderr:
            print(stderr, end="", file=sys.stderr, flush=True)
        if timed_out:
            raise SolverFailed(f"Clarabel was stopped {SETUP_GRACE_S:g} s past controller.time_limit_s="
                               f"{ctl.time_limit_s:g} (after {wall:.0f} s), before it wrote a solution")
        if proc.returncode != 0 or not (folder / "info.json").is_file():
            raise SolverFailed(f"Clarabel's process ended with {ended_how(proc, stderr)} after {wall:.1f} s")
        info = json.loads((folder / "info.json").read_text())
        with np.load(folder / "solution.npz") as sol:
            y, z = sol["x"].copy(), sol["z"].copy()
    status, iterations, solve_time = info["status"], info["iterations"], info["solve_time_s"]
    ctl.state.info = {"status": status, "iterations": iterations, "solve_time_s": solve_time}
    parts = layout.unpack(z)
    objective, residual, lam, factor = measured_point(problem, blocks, parts, y)
    yield ConicIterate(objective=objective, residual=residual, y=torch.from_numpy(y), lambda_min=lam, factor=factor,
                       row={"clarabel_status": status, "clarabel_iterations": iterations,
                            "clarabel_solve_s": solve_time})
