"""A tiny budget-constrained classifier (synthetic 16x16 images, small CNN) and an in-process run of it."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch

from alm_bench.problems.budget import SpectralBudget
from alm_bench.problems.classifier import BudgetClassifier
from alm_bench.runners import RunContext
from alm_bench.runners.stochastic import run as run_stochastic
from alm_bench.tracking import FileTracker, RunInfo, Trackers


def tiny_problem(budget=None, **overrides: Any) -> BudgetClassifier:
    settings = dict(dataset="synthetic", synthetic={"train_size": 800, "test_size": 200, "image_size": 16,
                                                    "noise": 0.4},
                    model="small_cnn", width=8, batch_size=32, lr=3e-3, max_steps=60, log_every=10)
    settings.update(overrides)
    return BudgetClassifier(budget=budget or SpectralBudget(bound="relative", value=0.0), **settings)


def train(problem: BudgetClassifier, controller: Any, out: Path, *, seed: int = 0,
          resume: Path | None = None) -> tuple[dict, list[dict]]:
    """Run like `alm-bench train` does (seeded, file tracker); returns the summary and the trace rows."""
    torch.manual_seed(seed)
    trackers = Trackers([FileTracker()])
    trackers.start(RunInfo(output_dir=out, name="test"))
    summary = run_stochastic(problem, controller, trackers,
                             RunContext(output_dir=out, device=torch.device("cpu"), seed=seed, resume=resume))
    trackers.finish(summary)
    trace = out / "trace.csv"
    rows = list(csv.DictReader(open(trace))) if trace.exists() else []
    return json.loads((out / "summary.json").read_text()), rows
