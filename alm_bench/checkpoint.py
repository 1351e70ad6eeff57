"""Checkpoints: everything needed to continue a run exactly.

<run folder>/checkpoints/last.pt holds, for training, the model, optimizer, GradScaler, controller and
budget states, the loop's counters and every RNG state (best_model.pt holds the weights with the best
validation accuracy); for smooth and conic runs, the loop's state after its last whole iteration, tagged
with the problem kind (`save_loop` / `load_loop`). Files are written atomically and read back with
`torch.load(weights_only=True)`, so a checkpoint can carry tensors and plain containers only, never
arbitrary pickled objects.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alm_bench.errors import UserError

FOLDER = "checkpoints"
LAST = "last.pt"
BEST = "best_model.pt"


def rng_states() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, mt, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "mt": list(mt), "gauss": gauss},
    }


def set_rng_states(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["mt"]), p["gauss"]))


def save(path: Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically: a run killed mid-write keeps its previous checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path, field: str = "resume") -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{field}: no checkpoint at {path} (resume takes the folder of a run that wrote "
                        f"{FOLDER}/{LAST})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated file, foreign pickle: one line, not a traceback
        raise UserError(f"{field}: cannot read checkpoint {path} ({type(err).__name__}: {err})") from None


def last_path(run_dir: Path) -> Path:
    return Path(run_dir) / FOLDER / LAST


def best_path(run_dir: Path) -> Path:
    return Path(run_dir) / FOLDER / BEST


def save_loop(run_dir: Path | None, kind: str, state: dict[str, Any]) -> None:
    """A smooth or conic loop's state after a whole iteration, tagged with the problem kind. A loop run as a
    library call without a run folder (run_dir None: benchmarks, notebooks) keeps none."""
    if run_dir is None:
        return
    save(last_path(run_dir), {"kind": kind, **state})


def resume_hint(run_dir: Path | None) -> str:
    """'; continue with resume=<run_dir>' for an interrupted run's message, when it left a checkpoint."""
    if run_dir is None or not last_path(run_dir).is_file():
        return ""
    return f"; continue with resume={run_dir}"


def load_loop(run_dir: Path, kind: str) -> dict[str, Any]:
    saved = load(last_path(run_dir))
    if saved.get("kind") != kind:
        raise UserError(f"resume: the checkpoint in {run_dir} is from a {saved.get('kind', 'training')} run, "
                        f"this problem is {kind}")
    return saved
