"""The mixing method's own C program (Wang, Chang & Kolter, github.com/locuslab/mixing), as an optional row of
the Max-Cut benchmark, certified by our metrics. Not part of alm-bench: build it outside the repository
(`gcc -O3 -std=gnu11 mixing.c -o mixing -lm`) and point MIXING_C at the binary; without it the row is skipped.

Its iterates do not depend on its sweep limit `-t K` (it seeds its start with srand48(0)), so the first sweep
whose factor meets a tolerance is found by doubling K, then bisection, one run of the program each. The time
is the program's own, printed at sweep K (sweeps only: the program has no certificate; ours, the harness's
confirmed lambda_min, is not counted, where the compiled `mixing` row counts its own certificate).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from alm_bench.conic.eigen import confirmed_lambda_min
from alm_bench.conic.problems import MaxCut

ITERATION = re.compile(r"^iter\s+(\d+)\s+time\s+([0-9.eE+-]+)", re.M)
MAX_SWEEPS = 1 << 15


def binary() -> str | None:
    path = os.environ.get("MIXING_C")
    return path if path and os.access(path, os.X_OK) else None


class Reference:
    """Runs of the C program on one graph, each measured by our metrics (eps_p = eps_d = 0: unit rows, shifted y)."""

    def __init__(self, program: str, graph_file: Path) -> None:
        self.program, self.folder = program, Path(tempfile.mkdtemp(prefix="alm-bench-mixing-c-"))
        self.file = self.folder / graph_file.name
        shutil.copyfile(graph_file, self.file)   # the program writes FILE.sol beside its input
        self.problem = MaxCut(str(graph_file), tol=1e-6, rounding_trials=1)
        self.c = self.problem.c_op.matrix
        self.seen: dict[int, tuple[float, float]] = {}   # sweeps -> (max eps, its own time)

    def run(self, sweeps: int) -> tuple[float, float]:
        if sweeps not in self.seen:
            out = subprocess.run([self.program, "-s", "maxcut", "-t", str(sweeps), "-e", "0", str(self.file)],
                                 capture_output=True, text=True, check=True, timeout=3600).stdout
            seconds = float(ITERATION.findall(out)[-1][1])
            v = np.loadtxt(self.file.with_name(self.file.name + ".sol"), ndmin=2)
            norms = np.linalg.norm(v, axis=1, keepdims=True)
            # An isolated vertex (43 on G60) keeps the program's zero row; any unit row is as good there.
            v = np.where(norms > 0, v / np.where(norms > 0, norms, 1.0), np.eye(1, v.shape[1]))
            cv = self.c @ v
            objective, y = float((cv * v).sum()), (cv * v).sum(axis=1)
            y_t = torch.from_numpy(y)
            bound = self.problem.dual_bound(y_t, confirmed_lambda_min(self.problem.slack(y_t)))
            self.seen[sweeps] = (abs(objective - bound) / (1 + abs(objective) + abs(bound)), seconds)
        return self.seen[sweeps]

    def first_meeting(self, tol: float) -> tuple[int, float] | None:
        """(sweeps, its time) of the first sweep whose factor meets `tol`; None within MAX_SWEEPS."""
        hi = 1
        while self.run(hi)[0] > tol:
            if hi >= MAX_SWEEPS:
                return None
            hi *= 2
        lo = hi // 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self.run(mid)[0] <= tol else (mid, hi)
        return hi, self.run(hi)[1]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def measure(graph_file: Path) -> dict | None:
    """The reference row's numbers: time and sweeps to 5e-4 and 1e-6, and its time per sweep."""
    program = binary()
    if program is None:
        return None
    ref = Reference(program, graph_file)
    try:
        coarse, fine = ref.first_meeting(5e-4), ref.first_meeting(1e-6)
        longest = max(ref.seen)
        return {"t4": coarse and coarse[1], "i4": coarse and coarse[0], "t6": fine and fine[1],
                "i6": fine and fine[0], "last": ref.seen[longest][0], "per_sweep_ms": 1e3 * ref.seen[longest][1] / longest}
    finally:
        ref.close()
