"""Max-Cut SDP on G-set graphs: time to max(eps_p, eps_d, eps_g) <= 5e-4 and <= 1e-6 for BALA, classic ALM
(Burer-Monteiro), the mixing method and SCS, all measured by alm-bench's own metrics in the same process
(times from the trace, after loading; the final recertification of the bound is not included). Ratios are
against BALA. Gap: relative difference of the certified bound to the value in the data README.
Data: $ALM_BENCH_SDP_DATA or ../shared/data (not in the repository).

    python -m bench.sdp            quick: G1, G14, G11; SCS on G1 only (capped)
    python -m bench.sdp --full     G1 G11 G14 G22 G43 G48 G55 G60, SCS capped at 15 minutes
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import torch

from alm_bench.controllers.bala import BALA
from alm_bench.controllers.baselines_sdp import MixingMethod, SCSSolver
from alm_bench.controllers.classic_alm import ClassicALM
from alm_bench.problems.sdp import MaxCut
from alm_bench.runners import RunContext
from alm_bench.runners.conic import run as run_conic

SDP_VALUE = {"G1": 12083.1977, "G11": 629.1647, "G14": 3191.5668, "G22": 14135.9457, "G43": 7032.2218,
             "G48": 6000.0, "G55": 11039.4604, "G60": 15222.2680}
QUICK, FULL = ["G1", "G14", "G11"], ["G1", "G11", "G14", "G22", "G43", "G48", "G55", "G60"]


def data_dir() -> Path:
    env = os.environ.get("ALM_BENCH_SDP_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


class Rows:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def log(self, row: dict) -> None:
        self.rows.append(row)


def controllers(graph: str, full: bool, time_cap: float) -> dict:
    toroidal = graph in ("G11", "G48", "G60")
    out = {"bala": BALA(r_c=12 if toroidal else 6, time_limit_s=time_cap),
           "classic_alm": ClassicALM(max_outer_iterations=100),
           "mixing": MixingMethod(time_limit_s=time_cap)}
    if full or graph == "G1":
        out["scs"] = SCSSolver(eps=1e-4, time_limit_s=900 if full else 120)
    return out


def first_time(rows: list[dict], tol: float) -> tuple[float | None, int | None]:
    for r in rows:
        if r["max_eps"] <= tol:
            return r["wall_time_s"], r["step"]
    return None, None


def run(full: bool = False) -> str:
    folder = data_dir() / "gset_rudy"
    if not folder.is_dir():
        return f"(skipped: no G-set data at {folder}; set ALM_BENCH_SDP_DATA)"
    lines = ["| graph | solver | t(5e-4) s | iters | t(1e-6) s | iters | ratio t(5e-4)/BALA | final max eps | "
             "gap of bound | peak RSS MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for graph in FULL if full else QUICK:
        problem = MaxCut(str(folder / f"{graph}.txt"), tol=1e-6, rounding_trials=1)
        bala_time = None
        for name, controller in controllers(graph, full, 300 if full else 60).items():
            rows = Rows()
            out = Path(f"/tmp/alm_bench_sdp/{graph}_{name}")
            out.mkdir(parents=True, exist_ok=True)
            summary = run_conic(problem, controller, rows, RunContext(output_dir=out, device=torch.device("cpu")))
            t4, i4 = first_time(rows.rows, 5e-4)
            t6, i6 = first_time(rows.rows, 1e-6)
            if name == "bala":
                bala_time = t4
            ratio = f"{t4 / bala_time:.2f}" if t4 and bala_time else "–"
            gap = abs(summary["sdp_bound"] - SDP_VALUE[graph]) / SDP_VALUE[graph]
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            fmt = lambda v: f"{v:.2f}" if v is not None else "not reached"  # noqa: E731
            last = rows.rows[-1]["max_eps"] if rows.rows else float("nan")
            lines.append(f"| {graph} | {name} | {fmt(t4)} | {i4 or '–'} | {fmt(t6)} | {i6 or '–'} | {ratio} | "
                         f"{last:.1e} | {gap:.1e} | {rss:.0f} |")
            print(lines[-1], flush=True)
    return "\n".join(lines) + "\n\n(peak RSS is the process's, cumulative over the rows above.)"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    print(run(full=args.full))
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
