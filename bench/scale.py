"""Max-Cut at scale: generated sparse graphs of 10^5 vertices (and an attempt at 10^6) to a certified 5e-4 on
this machine's CPUs, with each solver's time and peak memory.

Each (graph, solver) runs in a fresh process (its peak RSS, VmHWM, is its own; the idle interpreter with torch
and scipy is given beside it), through the same runner as `alm-bench solve`: time to the run's confirmed stop
(a reliable lambda_min confirms the claim), then the final recertification of the bound (ARPACK), then one
Goemans-Williamson hyperplane with the local search. "certified eps" is max(eps_p, eps_d, relative gap between
the primal value and the recertified bound): what a user can rely on. A child that would pass MEMORY_CAP_GB is
stopped by a watchdog and reported with its last trace row (where it stopped).

    python -m bench.scale            random:n=100000,degree=8,seed=0 with mixing and BALA (600 s caps), then the
                                     10^6 attempt, random:n=1000000,degree=8,seed=0, with mixing (1800 s)
    python -m bench.scale --quick    the 10^5 rows only
    python -m bench.scale --graphs toroidal:316x316 --solvers mixing --tol 1e-4 --time-cap 900
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from pathlib import Path

import torch

from bench.sdp import FreshProcesses, peak_rss_mb

LARGE = "random:n=100000,degree=8,seed=0"
MILLION = "random:n=1000000,degree=8,seed=0"
SOLVERS = ["mixing", "bala", "classic_alm"]
# (graph, solvers, seconds of solving): the fastest solver (the compiled mixing method) and BALA at 10^5; at
# 10^6 the mixing method (BALA took 30 s an iteration at 10^5 and its subproblem matrix, n x r(r+1)/2, grows
# past 10 GB at 10^6).
PLAN = [(LARGE, ["mixing", "bala"], 600.0), (MILLION, ["mixing"], 1800.0)]
MEMORY_CAP_GB = float(os.environ.get("ALM_BENCH_SCALE_MEMORY_GB", "16"))
PROGRESS = Path("/tmp/alm_bench_scale")


def controller(name: str, time_cap: float):
    if name == "mixing":
        from alm_bench.conic.solvers.mixing import MixingMethod

        return MixingMethod(time_limit_s=time_cap)
    if name == "bala":
        from alm_bench.conic.solvers.bala import BALA

        return BALA(r_c=12, time_limit_s=time_cap)   # bench.sdp's setting for large sparse graphs (G60)
    from alm_bench.controllers.classic_alm import ClassicALM

    return ClassicALM(max_outer_iterations=1000, time_limit_s=time_cap)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_watchdog(cap_mb: float, progress: Path) -> None:
    """Ends this process (SIGKILL, as the OS would) before its resident memory passes cap_mb, saying so first."""
    def watch() -> None:
        while True:
            if rss_mb() > cap_mb:
                with open(progress, "a") as f:
                    f.write(json.dumps({"killed": f"resident memory passed {cap_mb / 1024:.0f} GB"}) + "\n")
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()


class ProgressFile:
    """A tracker that appends each trace row (a few fields) to a file, so that a run killed for its memory
    still tells where it was."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def start(self, run) -> None:
        pass

    def log(self, row: dict) -> None:
        keep = ("step", "max_eps", "wall_time_s", "sweeps", "eig_iters", "oracle_s")
        with open(self.path, "a") as f:
            f.write(json.dumps({k: row[k] for k in keep if k in row}) + "\n")

    def finish(self, summary: dict) -> None:
        pass


def measure(spec: str, name: str, tol: float, time_cap: float, cap_gb: float, folder: Path = PROGRESS) -> dict:
    """One solver on one generated graph, in this (fresh) process; its trace rows also go to folder/NAME.jsonl."""
    from alm_bench.conic.measure import run as run_conic
    from alm_bench.conic.problems import MaxCut
    from alm_bench.conic.solvers.mixing import MixingMethod
    from alm_bench.runners import RunContext
    from alm_bench.runners.stopping import SolverFailed
    from alm_bench.tracking import MemoryTracker, Trackers

    folder.mkdir(parents=True, exist_ok=True)
    progress = folder / f"{name}.jsonl"
    progress.write_text("")
    memory_watchdog(cap_gb * 1024, progress)
    t0 = time.perf_counter()
    problem = MaxCut(graph=spec, tol=tol, rounding_trials=1)
    built = time.perf_counter() - t0
    rows = MemoryTracker()
    ctl = controller(name, time_cap)
    try:
        summary = run_conic(problem, ctl, Trackers([rows, ProgressFile(progress)]),
                            RunContext(output_dir=None, device=torch.device("cpu")))
    except SolverFailed as err:   # e.g. the final certificate's ARPACK did not converge: a row, not a crash
        summary = {"status": "failed", "message": str(err), "wall_time_s": time.perf_counter() - t0 - built}
    last = rows.rows[-1] if rows.rows else {}
    certified = max(last.get("eps_p", 0.0), last.get("eps_d", 0.0), summary.get("relative_gap", float("nan")))
    rank = last.get("rank")
    if rank is None and isinstance(ctl, MixingMethod):
        rank = ctl.rank
    return {"n": problem.n, "edges": int(problem.adjacency.nnz // 2), "status": summary["status"],
            "message": summary.get("message", ""), "time": summary["wall_time_s"], "build": built,
            "iterations": last.get("sweeps", last.get("step")), "rank": rank, "certified_eps": certified,
            "run_eps": last.get("max_eps", float("nan")), "certify": summary.get("certify_time_s"),
            "rounding": summary.get("rounding_time_s"), "cut": summary.get("cut_value"),
            "bound": summary.get("sdp_bound"), "rss_mb": peak_rss_mb()}


def where_it_stopped(progress: Path) -> dict:
    """The last trace row and the watchdog's note of a child that did not come back."""
    lines = [json.loads(line) for line in progress.read_text().splitlines() if line.strip()]
    note = next((line["killed"] for line in lines if "killed" in line), "killed by the OS (out of memory?)")
    rows = [line for line in lines if "killed" not in line]
    return {"killed": note, "last": rows[-1] if rows else {}}


def row(spec: str, name: str, m: dict | None, stopped: dict | None, cap_gb: float = MEMORY_CAP_GB) -> str:
    if m is None:
        last = stopped["last"]
        where = (f"max eps {last['max_eps']:.1e} at {last['wall_time_s']:.0f} s" if last else "before its first row")
        return f"| {spec} | – | {name} | {stopped['killed']}, {where} | – | – | – | – | – | > {cap_gb:.0f} GB |"
    reached = m["status"] == "converged"
    why = "time limit" if "time limit" in m["message"] else f"{m['status']} ({m['message'][:100]})"
    took = f"{m['time']:.0f}" if reached else f"not reached: {why} at {m['time']:.0f} (max eps {m['run_eps']:.1e})"
    fmt = lambda v, f: "–" if v is None else format(v, f)   # noqa: E731
    return (f"| {spec} | {m['n']} / {m['edges']} | {name} (rank {m['rank'] or '–'}) | {took} | "
            f"{m['iterations'] or '–'} | {fmt(m['certified_eps'], '.1e')} | {fmt(m['certify'], '.0f')} | "
            f"{m['build']:.1f} | {fmt(m['rounding'], '.1f')} / {fmt(m['cut'], '.0f')} | {m['rss_mb'] / 1024:.2f} GB |")


def run(full: bool = False, graphs: list[str] | None = None, solvers: list[str] | None = None, tol: float = 5e-4,
        time_cap: float | None = None, cap_gb: float = MEMORY_CAP_GB, quick: bool = False) -> str:
    plan = PLAN[:1] if quick else PLAN
    if graphs:
        plan = [(spec, solvers or ["mixing", "bala"], time_cap or 600.0) for spec in graphs]
    elif solvers or time_cap:
        plan = [(spec, solvers or names, time_cap or cap) for spec, names, cap in plan]
    procs = FreshProcesses()
    lines = ["| graph | n / edges | solver | time to certified stop (s) | sweeps / iterations | certified eps | "
             "recertify (s) | build (s) | rounding (s) / cut | peak RSS |", "|---|---|---|---|---|---|---|---|---|---|"]
    try:
        baseline = procs.call(peak_rss_mb)
        for spec, names, cap in plan:
            for name in names:
                m = procs.call(measure, spec, name, tol, cap, cap_gb)
                lines.append(row(spec, name, m, None if m else where_it_stopped(PROGRESS / f"{name}.jsonl"), cap_gb))
                print(lines[-1], flush=True)
    finally:
        procs.close()
    caps = ", ".join(f"{spec}: {cap:.0f} s" for spec, _, cap in plan)
    return "\n".join(lines) + (
        f"\n\n(tolerance {tol:g}; seconds of solving per run: {caps}; {cap_gb:.0f} GB resident at most; peak RSS "
        f"of each solver's own process, including {baseline / 1024:.2f} GB for Python, torch and scipy alone, "
        f"idle; times after the graph is built; recertify and rounding (one hyperplane) come after the stop.)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the 10^5 rows only")
    parser.add_argument("--graphs", nargs="+", help="generator specs (alm-bench graph generate --help)")
    parser.add_argument("--solvers", nargs="+", choices=SOLVERS, help="default: mixing and bala (10^6: mixing)")
    parser.add_argument("--tol", type=float, default=5e-4)
    parser.add_argument("--time-cap", type=float, help="seconds of solving per run (600; 1800 at 10^6)")
    parser.add_argument("--memory-cap", type=float, default=MEMORY_CAP_GB, help="GB resident per run (16)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    print(run(graphs=args.graphs, solvers=args.solvers, tol=args.tol, time_cap=args.time_cap,
              cap_gb=args.memory_cap, quick=args.quick))
    print(f"\n(total {time.perf_counter() - t0:.0f} s; load {os.getloadavg()[0]:.1f} at the end)")
