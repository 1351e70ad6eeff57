"""One loop per problem kind, each `run(problem, controller, trackers, ctx)` returning the summary dict (with at
least status, message, objective, max_violation, iterations, wall_time_s): `smooth` (and `smooth_auglag` for
seed 000's scheduler), `stochastic` (training), and the conic harness `alm_bench.conic.measure`.
`loop_for` is the one place that chooses among them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from alm_bench.errors import UserError


@dataclass
class RunContext:
    """What a loop needs besides problem, controller and trackers."""

    output_dir: Path | None
    device: torch.device
    seed: int = 0
    resume: Path | None = None          # a previous run folder to continue from
    extra: dict[str, Any] = field(default_factory=dict)


def past_time_limit(controller: Any, wall_time_s: float) -> str | None:
    """The stop message once a run has passed its controller's `time_limit_s` (checked after each whole
    iteration, so the one that crosses the limit finishes); None within it or without a limit."""
    limit = getattr(controller, "time_limit_s", None)
    if limit is None or wall_time_s < limit:
        return None
    return f"stopped at the time limit of {limit} s"


def loop_for(problem: Any, controller: Any) -> Callable[..., dict[str, Any]]:
    """The loop that runs `controller` on `problem` (modules imported only when their kind runs)."""
    kind = getattr(problem, "kind", None)
    if kind == "smooth":
        from alm_bench.controllers.classic_alm import ClassicALM
        from alm_bench.runners import smooth, smooth_auglag

        return smooth.run if isinstance(controller, ClassicALM) else smooth_auglag.run
    if kind == "stochastic":
        from alm_bench.runners import stochastic

        return stochastic.run
    if kind == "conic":
        from alm_bench.conic import measure

        return measure.run
    raise UserError(f"no runner for problems of kind {kind!r}")
