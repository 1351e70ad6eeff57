"""Shared fixtures. W&B never reaches the network in tests; run folders go to tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

REPO = Path(__file__).resolve().parents[1]
ALM_BENCH = [sys.executable, "-m", "alm_bench"]


def compose_config(*overrides: str):
    """The composed Hydra config for these overrides, as `alm-bench train` would build it."""
    with initialize_config_module(config_module="alm_bench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 240):
    """Run `alm-bench ARGS` in a subprocess; returns the CompletedProcess (text)."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([*ALM_BENCH, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def read_summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run folders for this test go under tmp_path/outputs."""
    out = tmp_path / "outputs"
    monkeypatch.setenv("ALM_BENCH_OUTPUTS", str(out))
    return out
