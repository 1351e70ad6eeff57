"""Start-up (issue 19, item 12): each command imports only what it uses. The times are in bench/startup.py
(`python -m bench.startup`); here, which modules a command left loaded when it exited."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import DATA, REPO

# Runs the installed CLI in-process and prints, at exit, which of these modules were imported, and how many
# objects start-up took out of the garbage collector's sight.
PROBE = """
import atexit, gc, json, sys
WATCH = ("torch", "torchvision", "wandb", "matplotlib", "scipy", "numba", "PIL", "hydra", "numpy",
         "alm_bench.conic", "alm_bench.report")
atexit.register(lambda: print("PROBE " + json.dumps({"loaded": [m for m in WATCH if m in sys.modules],
                                                     "frozen": gc.get_freeze_count()}), file=sys.__stderr__))
sys.argv = ["alm-bench", *sys.argv[1:]]
from alm_bench.cli import app
app()
"""


def probe(tmp_path, *args: str) -> tuple[set[str], int]:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO), "ALM_BENCH_OUTPUTS": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True,
                         timeout=240, cwd=tmp_path)
    line = next(line for line in out.stderr.splitlines() if line.startswith("PROBE "))
    result = json.loads(line[len("PROBE "):])
    return set(result["loaded"]), result["frozen"]


@pytest.mark.slow
def test_help_imports_neither_hydra_nor_torch(tmp_path):
    loaded, _ = probe(tmp_path, "--help")
    assert not loaded & {"torch", "hydra", "numpy"}


@pytest.mark.slow
def test_train_help_and_cfg_compose_without_torch(tmp_path):
    for args in (["train", "--help"], ["train", "--cfg", "job"]):
        loaded, frozen = probe(tmp_path, *args)
        assert "hydra" in loaded and not loaded & {"torch", "numpy", "scipy"}, args
        assert frozen == 0


@pytest.mark.slow
def test_toy_run_imports_torch_only(tmp_path):
    loaded, frozen = probe(tmp_path, "train")
    assert "torch" in loaded
    assert not loaded & {"torchvision", "wandb", "matplotlib", "scipy", "numba", "PIL", "alm_bench.conic",
                         "alm_bench.report"}
    assert frozen > 100_000  # torch's import-time objects are out of the collector's way


@pytest.mark.slow
def test_maxcut_run_imports_no_training_or_plotting_stack(tmp_path):
    loaded, _ = probe(tmp_path, "solve", "maxcut", str(DATA / "G14.txt"), "problem.tol=1e-2")
    assert {"alm_bench.conic", "scipy"} <= loaded
    assert not loaded & {"torchvision", "wandb", "matplotlib", "PIL"}
