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
    import alm_bench.task  # noqa: F401  (registers the run-folder resolver)

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
