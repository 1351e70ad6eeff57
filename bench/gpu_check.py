"""The GPU check's measurements and its table (bench/gpu_check.sh runs the cuda tests first, then this).

    python -m bench.gpu_check [--dry-run] [--junit FILE] [--out bench/results/gpu.md]

Conic rows: BALA and Burer-Monteiro ALM (classic_alm) with device=cuda on G60 and on a generated 10^6-vertex
graph, to max eps <= 5e-4, each in a fresh process with a wall limit (a run still going at its limit is
stopped and reported with its last trace row: where it stopped; such a row's eps rests on the solver's own
eigenvalue, not yet confirmed). Time to the run's stop, iterations, GPU peak memory. Training rows: ResNet-18
images/s at batch 512 with bf16 autocast, unconstrained AdamW vs EMA-ALM with the spectral budget (bench.step_time's
side-by-side steps). The cuda tests' results come from pytest's JUnit file. --dry-run: the CPU, G14, 1000
vertices, a small CNN at batch 8, seconds per part.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

from bench.scale import ProgressFile, where_it_stopped

REPO = Path(__file__).resolve().parents[1]
MILLION = "random:n=1000000,degree=8,seed=0"
TOL = 5e-4
BUDGET_S = float(os.environ.get("GPU_CHECK_BUDGET_S", "450"))   # the whole call, tests included


def g60() -> Path | None:
    """G60 where the script can find it: $ALM_BENCH_SDP_DATA, ../shared/data, or .gpu/ (carried)."""
    env = os.environ.get("ALM_BENCH_SDP_DATA")
    for folder in ([Path(env) / "gset_rudy"] if env else []) + [REPO.parent / "shared" / "data" / "gset_rudy",
                                                                   REPO / ".gpu"]:
        if (folder / "G60.txt").is_file():
            return folder / "G60.txt"
    return None


def conic_child(source: str, solver: str, device: str, cap: float, progress: str, result: str) -> None:
    """One conic run (in a spawned process): writes its measurements to `result` as JSON."""
    from alm_bench.conic.graphs import is_spec
    from alm_bench.conic.measure import run as run_conic
    from alm_bench.conic.problems import MaxCut
    from alm_bench.conic.solvers.bala import BALA
    from alm_bench.controllers.classic_alm import ClassicALM
    from alm_bench.runners import RunContext
    from alm_bench.tracking import MemoryTracker, Trackers

    t0 = time.perf_counter()
    problem = (MaxCut(graph=source, tol=TOL, rounding_trials=1) if is_spec(source)
               else MaxCut(path=source, tol=TOL, rounding_trials=1))
    built = time.perf_counter() - t0
    ctl = BALA(r_c=12, time_limit_s=cap) if solver == "bala" else ClassicALM(max_outer_iterations=1000,
                                                                               time_limit_s=cap)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rows = MemoryTracker()
    summary = run_conic(problem, ctl, Trackers([rows, ProgressFile(Path(progress))]),
                        RunContext(output_dir=None, device=torch.device(device)))
    last = rows.rows[-1] if rows.rows else {}
    Path(result).write_text(json.dumps({
        "n": problem.n, "status": summary["status"], "time": summary["wall_time_s"], "built": built,
        "iterations": last.get("step"), "max_eps": last.get("max_eps"), "confirmed": bool(last.get("lambda_confirmed")),
        "relative_gap": summary.get("relative_gap"),
        "gpu_peak_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None}))


def conic_case(source: str, label: str, solver: str, device: str, cap: float, limit: float, work: Path) -> str:
    """Run conic_child in a fresh process, stopped at `limit` s; one table row."""
    progress, result = work / f"{solver}.jsonl", work / f"{solver}.json"
    progress.write_text("")
    result.unlink(missing_ok=True)
    child = multiprocessing.get_context("spawn").Process(
        target=conic_child, args=(source, solver, device, cap, str(progress), str(result)))
    t0 = time.perf_counter()
    child.start()
    child.join(limit)
    if child.is_alive():
        child.kill()
        child.join()
    wall = time.perf_counter() - t0
    if result.exists():
        m = json.loads(result.read_text())
        eps = m["relative_gap"] if m["status"] == "converged" else m["max_eps"]
        eps_note = "certified" if m["status"] == "converged" else ("confirmed" if m["confirmed"] else "own λ")
        gpu = f"{m['gpu_peak_gb']:.2f}" if m["gpu_peak_gb"] is not None else "–"
        return (f"| {label} | {solver} | {device} | {m['status']} | {m['time']:.1f} | {m['iterations'] or '–'} | "
                f"{eps:.1e} ({eps_note}) | {gpu} | {m['built']:.1f} |")
    stopped = where_it_stopped(progress)
    last = stopped["last"]
    where = (f"at its {limit:.0f} s wall limit" if wall >= limit else f"died ({child.exitcode})")
    eps = f"{last['max_eps']:.1e} (own λ)" if last else "no row yet"
    return (f"| {label} | {solver} | {device} | stopped {where} | {last.get('wall_time_s', float('nan')):.1f} | "
            f"{last.get('step', '–')} | {eps} | – | – |")


def training_rows(device: torch.device, dry: bool) -> list[str]:
    """ResNet-18 images/s, AdamW vs EMA-ALM, bf16 autocast (bench.step_time's alternating blocks)."""
    from bench.step_time import side_by_side

    # The dry run: a small CNN (bf16 convolutions on a CPU take seconds a step for ResNet-18)
    model, batch, blocks, steps = ("small_cnn", 8, 2, 1) if dry else ("resnet18", 512, 3, 10)
    adamw, alm = side_by_side(model, batch, device, "bf16", blocks, steps)
    return [f"| {model} | {batch} | bf16 | {device.type} | {batch / adamw:.0f} | {batch / alm:.0f} | "
            f"{alm / adamw:.3f} |"]


def test_lines(junit: Path | None) -> list[str]:
    """pytest's results per test from its JUnit XML (status and, for a skip or failure, why)."""
    if junit is None or not junit.exists():
        return ["(no JUnit file: the tests did not run or did not finish)"]
    lines = ["| test | result |", "|---|---|"]
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = f"{tag}: {' '.join((node.get('message') or '').split())[:120]}"
        lines.append(f"| {case.get('name')} | {outcome} ({float(case.get('time', 0)):.1f} s) |")
    return lines


def machine(device: torch.device) -> str:
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else "no GPU (dry run on the CPU)"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    cuda = f", CUDA {torch.version.cuda}" if device.type == "cuda" else ""
    return (f"{datetime.datetime.now():%Y-%m-%d %H:%M} · {gpu} · {os.cpu_count()} CPU cores · torch "
            f"{torch.__version__}{cuda} · Python {platform.python_version()} · commit {commit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="the CPU at toy sizes (checks the script)")
    parser.add_argument("--junit", type=Path, help="pytest's JUnit XML from the cuda tests")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gpu.md")
    parser.add_argument("--started", type=float, default=time.time(), help="the call's start (epoch s)")
    args = parser.parse_args()
    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA GPU (use --dry-run to check the script on the CPU)")
    device = torch.device("cpu" if dry else "cuda")
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"gpu_check_{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)

    graph = g60()
    cases = ([(str(REPO / "tests" / "data" / "G14.txt"), "G14 (dry run)"), ("random:n=1000,degree=8,seed=0",
                                                                            "random n=1000 (dry run)")]
             if dry else [(str(graph) if graph else None, "G60 (7000)"), (MILLION, "random n=10^6, degree 8")])
    # 4 runs x 50 s, the tests' 120 s and ~30 s of training fit the 450 s budget (an 8-minute call)
    cap, grace = (2.0, 60.0) if dry else (30.0, 20.0)
    conic = ["| graph | solver | device | status | time (s) | iterations | max eps | GPU peak GB | build (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for source, label in cases:
        for solver in ("bala", "classic_alm"):
            left = BUDGET_S - (time.time() - args.started)
            if source is None:
                conic.append(f"| {label} | {solver} | {device.type} | no G60.txt (carry .gpu/, see the header) "
                             f"| – | – | – | – | – |")
            elif left < cap + grace + 60:   # keep time for the training rows and the table
                conic.append(f"| {label} | {solver} | {device.type} | skipped: {left:.0f} s of the budget left "
                             f"| – | – | – | – | – |")
            else:
                conic.append(conic_case(source, label, solver, device.type, cap, cap + grace, work))
            print(conic[-1], flush=True)
    training = ["| model | batch | precision | device | unconstrained (AdamW) images/s | ema_alm images/s | "
                "ALM / AdamW step time |", "|---|---|---|---|---|---|---|"]
    training += training_rows(device, dry)
    print(training[-1], flush=True)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    notes.append(f"NCCL: {'the 2-process check is test_two_nccl_processes_keep_identical_duals above' if gpus > 1 else f'{gpus} GPU(s): the 2-process check needs two and was skipped'}.")
    text = "\n".join([
        "# GPU check" + (" (dry run on the CPU: checks the script, measures nothing of a GPU)" if dry else ""), "",
        machine(device), "", "command: `bash bench/gpu_check.sh" + (" --dry-run`" if dry else "`"), "",
        "## device=cuda tests (pytest -m cuda)", "", *test_lines(args.junit), "",
        f"## Max-Cut with device={device.type}, to max eps <= {TOL:g} (cap {cap:.0f} s of solving, wall limit "
        f"{cap + grace:.0f} s)", "", *conic, "",
        "Time: the runner's wall time to its stop (a converged run's includes the confirmation of its claim); build: "
        "reading or generating the graph and setting up the problem. max eps: certified (recomputed from the "
        "final certificate) when converged, else the last trace row's, on the solver's own eigenvalue (own λ) or "
        "confirmed. The eigenvalue confirmations and the final certificate run on the CPU (ARPACK).", "",
        "## Training step, ResNet-18 (CIFAR stem), synthetic CIFAR-shaped data", "", *training, "", *notes,
        "", f"(total {time.time() - args.started:.0f} s)", ""])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
