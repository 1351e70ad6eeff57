"""Short traces of every conic solver against values recorded before the conic code moved under
alm_bench/conic/ (commit c8df43c): a refactoring that changes an iterate, a step decision or a bound fails here.
To record anew after an intended change of numerics: `python tests/test_reference_traces.py` (and say why in the
commit)."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from alm_bench.conic.kernels import torch_kernels
from alm_bench.conic.lp import BoxLP
from alm_bench.conic.measure import run
from alm_bench.conic.problems import MaxCut, SDPAProblem
from alm_bench.conic.solvers.bala import BALA
from alm_bench.conic.solvers.mixing import MixingMethod
from alm_bench.controllers.classic_alm import ClassicALM
from alm_bench.runners import RunContext
from alm_bench.tracking import MemoryTracker

DATA = Path(__file__).parent / "data"
RECORDED = DATA / "reference_traces.json"
COLUMNS = ["alpha", "x1", "x2", "step", "objective", "bound", "eps_p", "eps_d", "eps_g", "max_eps", "rho", "rank",
           "step_type", "subproblem_iters", "eig_iters", "inner_evaluations", "sweeps", "primal", "lambda_confirmed"]
SUMMARY = ("status", "iterations", "sdp_bound", "cut_value", "objective")


def g14():
    return MaxCut(str(DATA / "G14.txt"), tol=1e-9, rounding_trials=2)


def mcp100():
    return SDPAProblem(str(DATA / "mcp100.dat-s"), tol=1e-9)


# name -> (problem, controller, through the torch kernels of device=cuda); tol 1e-9 so that none stops early
CASES = {
    "G14/bala": (g14, lambda: BALA(max_iterations=12), False),
    "G14/classic_alm": (g14, lambda: ClassicALM(max_outer_iterations=4), False),
    # The compiled sweep reproduces the Python one's objective to the bit; its bound columns were re-recorded
    # when the mixing loop's lambda_min became a Ritz value on a small basis (the gap estimate) instead of LOBPCG.
    "G14/mixing": (g14, lambda: MixingMethod(max_iterations=4, log_every=5), False),
    "mcp100/bala": (mcp100, lambda: BALA(max_iterations=12), False),
    "mcp100/classic_alm": (mcp100, lambda: ClassicALM(max_outer_iterations=4), False),
    "G14/bala/torch": (g14, lambda: BALA(max_iterations=12), True),
    "mcp100/classic_alm/torch": (mcp100, lambda: ClassicALM(max_outer_iterations=4), True),
    "lp/bala": (lambda: BoxLP(tol=1e-12), lambda: BALA(max_iterations=30), False),
}


def trace(name: str) -> dict:
    problem, controller, torch_path = CASES[name]
    rows = MemoryTracker()
    with torch_kernels() if torch_path else contextlib.nullcontext():
        summary = run(problem(), controller(), rows, RunContext(output_dir=None, device=torch.device("cpu")))
    return {"rows": [{k: r[k] for k in COLUMNS if k in r} for r in rows.rows],
            "summary": {k: summary.get(k) for k in SUMMARY}}


def assert_same(got, want, where: str) -> None:
    # 1e-9 relative: the same machine reproduces these bit for bit; the margin is for another BLAS build.
    if isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {got!r} != {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n.endswith("torch") else n
                                  for n in CASES])
def test_trace_matches_the_recorded_one(name: str) -> None:
    want = json.loads(RECORDED.read_text())[name]
    got = trace(name)
    assert len(got["rows"]) == len(want["rows"]) and got["rows"], name
    for step, (row, expected) in enumerate(zip(got["rows"], want["rows"]), 1):
        assert row.keys() == expected.keys(), f"{name} row {step}: columns"
        for key in expected:
            assert_same(row[key], expected[key], f"{name} row {step} {key}")
    for key in SUMMARY:
        assert_same(got["summary"][key], want["summary"][key], f"{name} summary {key}")


if __name__ == "__main__":   # python tests/test_reference_traces.py [CASE ...]: record these cases (default: all)
    recorded = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
    for name in sys.argv[1:] or CASES:
        recorded[name] = trace(name)
    RECORDED.write_text(json.dumps(recorded, indent=1))
    print(f"recorded {', '.join(sys.argv[1:] or CASES)} in {RECORDED}", file=sys.stderr)
