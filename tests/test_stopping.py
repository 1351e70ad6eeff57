"""How every run ends early, in one place: the exceptions, the status/message/exit code they map to, and the
signal handling every runner shares (the training loop's 'finish the step first' as an option)."""

from __future__ import annotations

import os
import signal

import pytest

from alm_bench import checkpoint
from alm_bench.conic.eigen import OracleFailed
from alm_bench.runners.signals import stop_signals
from alm_bench.runners.stopping import STOPS, Diverged, SolverFailed, exit_code, stop_for


def test_each_cause_maps_to_its_status_message_and_exit_code(tmp_path) -> None:
    diverged = stop_for(Diverged("objective became NaN/Inf at outer step 3"))
    assert (diverged.status, diverged.exit_code) == ("diverged", 1)
    assert diverged.message == ("diverged: objective became NaN/Inf at outer step 3; the trace up to the last "
                                "finite step is kept")
    failed = stop_for(OracleFailed("the eigen-oracle did not converge"))   # a solver's own failure
    assert (failed.status, failed.exit_code) == ("failed", 1) and failed.message.startswith("the eigen-oracle")
    # An interrupted run says how to go on only when its folder holds a checkpoint to go on from.
    assert stop_for(KeyboardInterrupt(), tmp_path).message == "interrupted (Ctrl-C); trace and summary written"
    checkpoint.save(checkpoint.last_path(tmp_path), {"kind": "smooth"})
    by_signal = stop_for(KeyboardInterrupt("signal SIGTERM"), tmp_path)
    assert (by_signal.status, by_signal.exit_code) == ("interrupted", 130)
    assert by_signal.message.endswith(f"; continue with resume={tmp_path}") and "SIGTERM" in by_signal.message
    after_step = stop_for("SIGINT at step 12", tmp_path)   # a signal the loop honoured after a whole step
    assert after_step.status == "interrupted" and "SIGINT at step 12" in after_step.message
    assert [exit_code(s) for s in ("converged", "max_iterations", "diverged", "failed", "interrupted")] == \
        [0, 0, 1, 1, 130]
    assert set(STOPS) == {Diverged, SolverFailed, KeyboardInterrupt} and issubclass(OracleFailed, SolverFailed)
    with pytest.raises(TypeError):
        stop_for(ValueError("a bug is not a way to stop"))


def test_a_signal_raises_at_once_or_after_the_step() -> None:
    with stop_signals() as request:
        with pytest.raises(KeyboardInterrupt, match="signal SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)    # Python runs the handler before the next bytecode
    assert not request.requested
    previous = signal.getsignal(signal.SIGINT)
    with stop_signals(after_step=True) as request:
        os.kill(os.getpid(), signal.SIGINT)          # the first one only asks ...
        assert request.requested and request.signal_name == "SIGINT"
        with pytest.raises(KeyboardInterrupt, match="signal SIGINT"):
            os.kill(os.getpid(), signal.SIGINT)      # ... a second one stops at once
    assert signal.getsignal(signal.SIGINT) is previous   # the handlers are restored
