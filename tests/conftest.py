"""Shared fixtures and the helpers every test module uses (test modules import only from here, never
from each other). W&B never reaches the network in tests; run folders go to tmp_path.

    run_loop(problem, controller, out_dir)   one run in this process, through the loop `alm-bench` picks
    train(problem, controller, out)          a classifier run as `alm-bench train` leaves it (files)
    run_task(folder, *overrides)             one job from composed overrides, as the CLI runs it
    run_cli(*args)                           `alm-bench ARGS` in a subprocess
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_module

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# One thread for torch and BLAS in the tests and the CLI processes they start: on 2 shared cores, whenever another
# process ran, OpenMP's waiting threads made a tiny CNN's backward pass 50x slower (130 ms against 2.6 ms at load
# 5; the EMA-ALM test alone took 4 minutes, 18 s on one thread). The training tests' trajectories were validated
# on one thread; the reference traces match on one thread too. Set it yourself to test another count.
os.environ.setdefault("OMP_NUM_THREADS", "1")

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DATA = TESTS / "data"
ALM_BENCH = [sys.executable, "-m", "alm_bench"]


# ---- runs in this process ---------------------------------------------------------------------------

@pytest.fixture(autouse=True, scope="session")
def torch_threads():
    """OMP_NUM_THREADS (above) even where torch was imported before this file."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    yield
    torch.set_num_threads(previous)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked cuda skip, saying why, where torch sees no CUDA GPU (CI never has one), unless
    ALM_BENCH_CUDA_TESTS_DEVICE=cpu runs them on the CPU (bench/gpu_check.sh --dry-run)."""
    import torch

    if torch.cuda.is_available() or os.environ.get("ALM_BENCH_CUDA_TESTS_DEVICE", "cuda") != "cuda":
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (bench/gpu_check.sh runs these on one)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def run_loop(problem: Any, controller: Any, out_dir: Path | None = None, *, files: bool = False, seed: int = 0,
             resume: Path | None = None, device: str = "cpu") -> tuple[dict, list[dict]]:
    """Run `controller` on `problem` on `device` (the CPU unless a cuda test asks) through the loop `alm-bench`
    picks for the pair (runners.loop_for), seeded as `alm-bench train` seeds; returns the summary and the rows, kept in memory by
    a MemoryTracker. out_dir is the run folder (checkpoints, a cut file); None runs without one, as benchmarks
    do. With files=True a FileTracker also writes trace.csv and summary.json there (a resumed run's trace then
    continues the previous one's)."""
    import torch

    from alm_bench.runners import RunContext, loop_for
    from alm_bench.task.seeding import seed_everything
    from alm_bench.tracking import FileTracker, MemoryTracker, RunInfo, Trackers

    assert out_dir is not None or not files, "files=True needs a run folder"
    memory = MemoryTracker()
    trackers = Trackers([FileTracker(), memory] if files else [memory])
    trackers.start(RunInfo(output_dir=out_dir, name="test"))
    seed_everything(seed)
    summary = loop_for(problem, controller)(problem, controller, trackers, RunContext(
        output_dir=out_dir, device=torch.device(device), seed=seed, resume=resume))
    trackers.finish(summary)
    return summary, memory.rows


def read_summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())


def read_trace(run_dir: Path) -> list[dict]:
    """trace.csv's rows as strings, as a reader of the run folder sees them ([] when there is none)."""
    trace = Path(run_dir) / "trace.csv"
    return list(csv.DictReader(trace.read_text().splitlines())) if trace.exists() else []


def complete_rows(run_dir: Path) -> list[dict]:
    """trace.csv's rows, asserting that each is whole (nothing half-written) and the steps run 1, 2, ..."""
    text = (Path(run_dir) / "trace.csv").read_text()
    assert text.endswith("\n"), "the last row was not flushed whole"
    rows = list(csv.DictReader(text.splitlines()))
    assert all(None not in r.values() and "" not in r.values() for r in rows)
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))
    return rows


def tiny_problem(budget=None, **overrides: Any):
    """A tiny budget-constrained classifier: synthetic 16x16 images (800 train, 200 test), a small CNN."""
    from alm_bench.problems.budget import SpectralBudget
    from alm_bench.problems.classifier import BudgetClassifier

    settings = dict(dataset="synthetic", synthetic={"train_size": 800, "test_size": 200, "image_size": 16,
                                                    "noise": 0.4},
                    model="small_cnn", width=8, batch_size=32, lr=3e-3, max_steps=60, log_every=10)
    settings.update(overrides)
    return BudgetClassifier(budget=budget or SpectralBudget(bound="relative", value=0.0), **settings)


def train(problem: Any, controller: Any, out: Path, *, seed: int = 0, resume: Path | None = None,
          device: str = "cpu") -> tuple[dict, list[dict]]:
    """A training run as `alm-bench train` leaves it: returns summary.json and trace.csv's rows (strings)."""
    run_loop(problem, controller, out, files=True, seed=seed, resume=resume, device=device)
    return read_summary(out), read_trace(out)


def compose_config(*overrides: str):
    """The composed Hydra config for these overrides, as `alm-bench train` would build it."""
    import alm_bench.task  # noqa: F401  (registers the run-folder resolver)

    with initialize_config_module(config_module="alm_bench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def run_task(folder: Path, *overrides: str, choices: dict[str, str] | None = None) -> dict:
    """One job of `alm-bench train OVERRIDES` in this process (alm_bench.task.run): trace and summary in
    `folder`, and the composed config where Hydra writes it (.hydra/config.yaml, which resume= reads)."""
    from omegaconf import OmegaConf

    from alm_bench.task import run

    cfg = compose_config(*overrides)
    summary = run(cfg, folder, choices=choices)
    (folder / ".hydra").mkdir(parents=True, exist_ok=True)
    (folder / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    return summary


# ---- runs in a subprocess ---------------------------------------------------------------------------

def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 240,
            script: bool = False):
    """Run `alm-bench ARGS` in a subprocess; returns the CompletedProcess (text). script=True runs the
    installed `alm-bench` script (the console entry point a user types) instead of `python -m alm_bench`."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO), **(env or {})}
    command = [str(installed_script()), *args] if script else [*ALM_BENCH, *args]
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def installed_script() -> Path:
    """The `alm-bench` console script of the environment running the tests."""
    script = Path(sys.executable).parent / "alm-bench"
    if not script.is_file():
        pytest.fail(f"no installed alm-bench script beside {sys.executable} (pip install -e .)")
    return script


# The seed toy slowed down (tests/fault_problems.py), so that a test can signal it mid-run.
SLOW = ["problem=custom", "problem._target_=fault_problems.SlowToy", "controller.max_outer_iterations=200",
        "controller.feasibility_tol=1e-14"]


def start_slow_run(run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([*ALM_BENCH, "train", *SLOW, f"hydra.run.dir={run_dir}"], cwd=TESTS, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(run_dir: Path, rows: int, timeout: float = 120) -> None:
    trace = Path(run_dir) / "trace.csv"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if trace.exists() and len(trace.read_text().splitlines()) > rows:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {rows} trace rows within {timeout} s")


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run folders for this test go under tmp_path/outputs."""
    out = tmp_path / "outputs"
    monkeypatch.setenv("ALM_BENCH_OUTPUTS", str(out))
    return out


# ---- a tiny dataset in the real CIFAR pickle layout, for torchvision's own loader ---------------

def _write_pickle(path: Path, obj: dict) -> str:
    import hashlib
    import pickle

    path.write_bytes(pickle.dumps(obj))
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_tiny_cifar(root: Path, name: str = "cifar10", per_file: int = 20, seed: int = 0) -> dict:
    """Write a tiny cifar-10-batches-py (5 train batches + test batch + meta) or cifar-100-python
    (train + test + meta) under `root`, with random images; returns {file name: md5}."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes = 10 if name == "cifar10" else 100

    def batch(n: int) -> dict:
        labels = rng.integers(0, classes, n).tolist()
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        key = "labels" if name == "cifar10" else "fine_labels"
        return {"batch_label": "tiny", key: labels, "data": data, "filenames": [f"{i}.png" for i in range(n)]}

    md5 = {}
    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for i in range(1, 6):
            md5[f"data_batch_{i}"] = _write_pickle(folder / f"data_batch_{i}", batch(per_file))
        md5["test_batch"] = _write_pickle(folder / "test_batch", batch(per_file))
        md5["batches.meta"] = _write_pickle(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True)
        md5["train"] = _write_pickle(folder / "train", batch(5 * per_file))
        md5["test"] = _write_pickle(folder / "test", batch(per_file))
        md5["meta"] = _write_pickle(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    return md5


@pytest.fixture
def tiny_cifar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A factory: tiny_cifar("cifar10") writes the tiny set and returns its root. torchvision checks the
    md5 of every file against the real dataset's; for this test only, the class's md5 lists are
    replaced by those of the generated files (real users keep torchvision's integrity check)."""
    from torchvision import datasets

    def make(name: str = "cifar10", per_file: int = 20) -> Path:
        root = tmp_path / f"data_{name}"
        md5 = write_tiny_cifar(root, name, per_file)
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        monkeypatch.setattr(cls, "train_list", [[f, md5[f]] for f, _ in cls.train_list])
        monkeypatch.setattr(cls, "test_list", [[f, md5[f]] for f, _ in cls.test_list])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5[cls.meta["filename"]]})
        return root

    return make
