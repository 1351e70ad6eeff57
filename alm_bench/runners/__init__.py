"""One loop per problem kind: alm_bench/runners/<kind>.py exposes `run(problem, controller, trackers, ctx)`
returning the summary dict (with at least status, message, objective, max_violation, iterations, wall_time_s)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from alm_bench.errors import UserError


@dataclass
class RunContext:
    """What a loop needs besides problem, controller and trackers."""

    output_dir: Path
    device: torch.device
    seed: int = 0
    resume: Path | None = None          # a previous run folder to continue from
    extra: dict[str, Any] = field(default_factory=dict)


def runner_for(kind: str) -> Callable[..., dict[str, Any]]:
    try:
        module = importlib.import_module(f"alm_bench.runners.{kind}")
    except ModuleNotFoundError as err:
        if err.name == f"alm_bench.runners.{kind}":
            raise UserError(f"no runner for problems of kind {kind!r}") from None
        raise
    return module.run
