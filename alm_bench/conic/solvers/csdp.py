"""CSDP (Borchers' primal-dual interior-point code) on a conic problem, run as the `csdp` program:

    csdp PROBLEM.dat-s SOLUTION        (in a temporary folder, with its param.csdp holding our settings)

PROBLEM.dat-s is the SDPA form of the problem, written from the problem's own data (a Max-Cut graph, a
gzip'ed file and a file with comments alike), one SDPA block per block of `problem.block_sizes`. CSDP solves

    (P)  max tr(F0 X)  s.t.  tr(F_k X) = c_k,  X PSD        (D)  min c.y'  s.t.  sum_k y'_k F_k - F0 = Z PSD

and ours is min <C, X> s.t. <A_k, X> = b_k, X PSD with C = -F0, A_k = F_k, b = c; so X is CSDP's X, our
objective is -tr(F0 X), and our y = -y' (then C - A^*(y) = -F0 + sum_k y'_k F_k = Z, and b.y = -c.y').
SOLUTION holds y' on its first line, then lines `matno block i j value` (1-based, upper triangle) for
Z (matno 1) and X (matno 2). Our code then measures eps_p, eps_d, eps_g of (X, y), as for every solver.

Ctrl-C/SIGTERM (KeyboardInterrupt in our runs) and controller.time_limit_s stop the child: SIGTERM, then
SIGKILL after child.KILL_AFTER_S. CSDP writes its solution only when it ends, so a run stopped by its time limit
fails with one line unless a solution was written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from alm_bench.conic.iterate import ConicIterate
from alm_bench.conic.problems import ConicSDP
from alm_bench.conic.readers.sdpa import SDPAData, write_sdpa
from alm_bench.conic.solvers.blocks import Blocks, measured_point
from alm_bench.conic.solvers.child import wait_child
from alm_bench.controllers.base import StateDictMixin
from alm_bench.errors import UserError, require_int, require_positive
from alm_bench.runners import RunContext
from alm_bench.runners.stopping import SolverFailed

# CSDP's return codes (CSDP 6.2 user's guide, "Return codes").
CSDP_STATUS = {0: "success", 1: "primal infeasible", 2: "dual infeasible", 3: "partial success",
               4: "maximum iterations reached", 5: "stuck at edge of primal feasibility",
               6: "stuck at edge of dual feasibility", 7: "lack of progress", 8: "X, Z or O singular",
               9: "NaN or Inf detected"}
ITERATION = re.compile(r"^Iter:\s*(\d+)", re.MULTILINE)


@dataclass
class CSDPState:
    info: dict[str, Any] = field(default_factory=dict)   # CSDP's return code, status, iterations and solve time


class CSDPSolver(StateDictMixin):
    """CSDP's settings (controller=csdp); one call to the program, so no checkpoint to resume from. The
    tolerances are CSDP's own defaults (1e-8, independent of problem.tol); param.csdp gets them."""

    accepts = ("conic",)
    resumes = ()

    def __init__(self, axtol: float = 1e-8, atytol: float = 1e-8, objtol: float = 1e-8, maxiter: int = 100,
                 time_limit_s: float | None = 900.0, verbose: bool = False, executable: str = "csdp") -> None:
        for name, value in (("axtol", axtol), ("atytol", atytol), ("objtol", objtol)):
            require_positive(f"controller.{name}", value)
        require_int("controller.maxiter", maxiter)
        if time_limit_s is not None:
            require_positive("controller.time_limit_s", time_limit_s)
        self.axtol, self.atytol, self.objtol = float(axtol), float(atytol), float(objtol)
        self.maxiter, self.time_limit_s, self.verbose = maxiter, time_limit_s, bool(verbose)
        self.executable = str(executable)
        self.state = CSDPState()


def sdpa_data(problem: ConicSDP) -> SDPAData:
    """The problem in SDPA form (F0 = -C, F_k = A_k, c = b), one SDPA block per block, upper triangles with
    the problem's repeated entries summed."""
    blocks = Blocks.of(problem)
    coo = problem.c_op.matrix.tocoo()
    c_upper = coo.row <= coo.col
    upper = problem._i <= problem._j
    matrix = np.concatenate([np.zeros(int(c_upper.sum()), np.int64), problem._k[upper] + 1])
    i = np.concatenate([coo.row[c_upper], problem._i[upper]]).astype(np.int64)
    j = np.concatenate([coo.col[c_upper], problem._j[upper]]).astype(np.int64)
    value = np.concatenate([-coo.data[c_upper], problem._v[upper]])
    block, r, c = blocks.locate(i, j, "C or a constraint matrix", problem.source)
    key = np.stack([matrix, block, r, c], axis=1)
    unique, inverse = np.unique(key, axis=0, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=value, minlength=len(unique))
    keep = summed != 0
    unique, summed = unique[keep], summed[keep]
    return SDPAData(c=problem.b_np.copy(), block_sizes=list(blocks.sizes), matrix=unique[:, 0], block=unique[:, 1],
                    row=unique[:, 2], col=unique[:, 3], value=summed)


def write_params(path: Path, ctl: CSDPSolver) -> None:
    """param.csdp: CSDP's defaults except the tolerances and maxiter; printlevel 1 (the iteration lines)."""
    path.write_text(f"axtol={ctl.axtol:.6g}\natytol={ctl.atytol:.6g}\nobjtol={ctl.objtol:.6g}\npinftol=1.0e8\n"
                    f"dinftol=1.0e8\nmaxiter={ctl.maxiter}\nminstepfrac=0.90\nmaxstepfrac=0.97\nminstepp=1.0e-8\n"
                    f"minstepd=1.0e-8\nusexzgap=1\ntweakgap=0\naffine=0\nprintlevel=1\nperturbobj=1\nfastmode=0\n")


def read_solution(path: Path, m: int, blocks: Blocks) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """(y', X's blocks) from CSDP's solution file (dense matrices for PSD blocks, vectors for the rest), or
    None when the file is missing or incomplete."""
    if not path.is_file():
        return None
    try:
        with open(path) as f:
            y = np.array([float(t) for t in f.readline().split()])
            with warnings.catch_warnings():   # a solution with X = 0 has no entry lines
                warnings.simplefilter("ignore", UserWarning)
                entries = np.loadtxt(f, ndmin=2)
    except ValueError:
        return None
    if y.size != m or (entries.size and entries.shape[1] != 5) or not np.isfinite(y).all():
        return None
    psd = blocks.psd
    parts = [np.zeros((abs(s), abs(s))) if psd[b] else np.zeros(abs(s)) for b, s in enumerate(blocks.sizes)]
    if entries.size:
        x = entries[entries[:, 0] == 2]
        for b in np.unique(x[:, 1]).astype(int):
            if not 1 <= b <= len(parts):
                return None
            e = x[x[:, 1] == b]
            i, j = e[:, 2].astype(int) - 1, e[:, 3].astype(int) - 1
            part = parts[b - 1]
            if part.ndim == 1:
                part[i] = e[:, 4]
            else:
                part[i, j] = e[:, 4]
                part[j, i] = e[:, 4]
    return y, parts


def child_env() -> dict[str, str]:
    """The environment for CSDP: ours, with the BLAS thread count of our own CPU runs where none is set."""
    env = dict(os.environ)
    threads = os.environ.get("ALM_BENCH_BLAS_THREADS", "1")
    if threads.isdigit() and int(threads) > 0:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env.setdefault(name, threads)
    return env


def iterate(problem: ConicSDP, ctl: CSDPSolver, ctx: RunContext) -> Iterator[ConicIterate]:
    binary = shutil.which(ctl.executable)
    if binary is None:
        raise UserError(f"controller=csdp needs the CSDP program ({ctl.executable!r} is not on PATH): "
                        f"apt-get install coinor-csdp (Debian/Ubuntu), or set controller.executable=PATH")
    problem.to(torch.device("cpu"))
    blocks = Blocks.of(problem)
    with tempfile.TemporaryDirectory(prefix="alm-bench-csdp-") as tmp:
        folder = Path(tmp)
        problem_file, solution_file, log_file = folder / "problem.dat-s", folder / "solution.txt", folder / "csdp.log"
        write_sdpa(problem_file, sdpa_data(problem))
        write_params(folder / "param.csdp", ctl)
        t0 = time.perf_counter()
        with open(log_file, "w") as log:
            proc = subprocess.Popen([binary, str(problem_file), str(solution_file)], cwd=folder, env=child_env(),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            # KeyboardInterrupt (Ctrl-C, SIGTERM) or the time limit: no csdp is left running
            timed_out = wait_child(proc, ctl.time_limit_s)
        solve_time = time.perf_counter() - t0
        output = log_file.read_text(errors="replace")
        # only a csdp that ended by itself wrote a whole solution (a stopped one writes none, or part of one)
        solution = read_solution(solution_file, problem.m, blocks) if proc.returncode >= 0 else None
    if ctl.verbose:
        print(output, end="" if output.endswith("\n") else "\n", flush=True)
    code = proc.returncode
    iterations = [int(n) for n in ITERATION.findall(output)]
    iterations_done = iterations[-1] if iterations else None
    if timed_out:
        status = f"stopped after time_limit_s={ctl.time_limit_s:g}"
    else:
        status = CSDP_STATUS.get(code, f"return code {code}")
    ctl.state.info = {"return_code": code, "status": status, "iterations": iterations_done, "solve_time_s": solve_time}
    if solution is None:
        last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output")
        raise SolverFailed(f"CSDP ({status}) wrote no solution after {solve_time:.1f} s; its last line: {last[:200]}")
    y_csdp, parts = solution
    y = -y_csdp
    objective, residual, lam, factor = measured_point(problem, blocks, parts, y)
    yield ConicIterate(objective=objective, residual=residual, y=torch.from_numpy(y), lambda_min=lam, factor=factor,
                       row={"csdp_status": status, "csdp_return_code": code, "csdp_iterations": iterations_done,
                            "csdp_solve_s": solve_time})
