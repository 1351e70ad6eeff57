"""One loop per problem kind: alm_bench/runners/<kind>.py exposes `run(problem, controller, trackers, ctx)`
returning the summary dict (with at least status, message, objective, max_violation, iterations, wall_time_s)."""

from __future__ import annotations

import importlib
import signal
import threading
from contextlib import contextmanager
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


@contextmanager
def signals_as_interrupt():
    """Within this block SIGINT (Ctrl-C) and SIGTERM (a scheduler's kill, `timeout`) stop a run the same way:
    the loop catches KeyboardInterrupt and writes status `interrupted` with the signal's name, its trace,
    its summary (and its checkpoint, where the problem has one)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def past_time_limit(controller: Any, wall_time_s: float) -> str | None:
    """The stop message once a run has passed its controller's `time_limit_s` (checked after each whole
    iteration, so the one that crosses the limit finishes); None within it or without a limit."""
    limit = getattr(controller, "time_limit_s", None)
    if limit is None or wall_time_s < limit:
        return None
    return f"stopped at the time limit of {limit} s"


def runner_for(kind: str) -> Callable[..., dict[str, Any]]:
    try:
        module = importlib.import_module(f"alm_bench.runners.{kind}")
    except ModuleNotFoundError as err:
        if err.name == f"alm_bench.runners.{kind}":
            raise UserError(f"no runner for problems of kind {kind!r}") from None
        raise
    return module.run
