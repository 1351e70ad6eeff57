"""How a run ends early, in one place: the exceptions a loop raises, and the one mapping from what stopped it
(an exception, or a signal that asked the loop to stop after a whole step) to its status, its message and the
command's exit code. Every loop catches `STOPS` around its iterations and passes what it caught to `stop_for`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alm_bench import checkpoint


class Diverged(Exception):
    """NaN or Inf in an iterate, an objective, a constraint or a loss: the run stops with its finite trace."""


class SolverFailed(RuntimeError):
    """A solver's numerics gave up (no eigensolver converged): the run stops rather than use a wrong value."""


STOPS = (Diverged, SolverFailed, KeyboardInterrupt)   # SIGINT and SIGTERM arrive as KeyboardInterrupt
EXIT_CODES = {"converged": 0, "max_iterations": 0, "stopped": 0, "diverged": 1, "failed": 1, "interrupted": 130}


def exit_code(status: str) -> int:
    """The command's exit status for a run that ended with `status` (0 for a run that finished its budget)."""
    return EXIT_CODES.get(status, 0)


@dataclass(frozen=True)
class Stop:
    status: str
    message: str
    exit_code: int


def stop_for(cause: BaseException | str, run_dir: Path | None = None) -> Stop:
    """The status, message and exit code of a run ended by `cause`: one of STOPS, or the name of a signal
    that the loop honoured after a whole step. The message says what is kept and how to go on (a run folder
    with a checkpoint gets '; continue with resume=<folder>')."""
    if isinstance(cause, Diverged):
        return _stop("diverged", f"diverged: {cause}; the trace up to the last finite step is kept")
    if isinstance(cause, SolverFailed):
        return _stop("failed", f"{cause}; the trace up to the last whole iteration is kept")
    if isinstance(cause, KeyboardInterrupt):
        cause = str(cause) or "Ctrl-C"
    if isinstance(cause, str):
        return _stop("interrupted", f"interrupted ({cause}); trace and summary written"
                                    f"{checkpoint.resume_hint(run_dir)}")
    raise TypeError(f"stop_for takes one of {STOPS} or a signal name, not {type(cause).__name__}")


def _stop(status: str, message: str) -> Stop:
    return Stop(status, message, EXIT_CODES[status])
