"""A peer's program in a child process that the run can always stop: Ctrl-C and SIGTERM reach this process as
KeyboardInterrupt, and whatever ends the wait (that, a time limit, an error) stops the child before it goes on."""

from __future__ import annotations

import signal
import subprocess

KILL_AFTER_S = 3.0     # after SIGTERM, how long a child gets before SIGKILL


def stop_child(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after KILL_AFTER_S; returns once the child is reaped (a second Ctrl-C during the
    grace period kills it at once, then propagates)."""
    if proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=KILL_AFTER_S)
    except BaseException as err:
        proc.kill()
        proc.wait()
        if not isinstance(err, subprocess.TimeoutExpired):
            raise


def wait_child(proc: subprocess.Popen, timeout: float | None) -> bool:
    """Wait for the child; True if it passed `timeout` (then stopped). Any exception (KeyboardInterrupt from
    Ctrl-C/SIGTERM) stops it before propagating: no child outlives the call."""
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        return True
    finally:
        stop_child(proc)


def ended_how(proc: subprocess.Popen, stderr: str) -> str:
    """'return code N' or 'signal SIGxxx', with the child's last line of stderr."""
    code = proc.returncode
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"return code {code}"
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    if "memory allocation" in last or code == -signal.SIGKILL:
        last += " (out of memory? each PSD cone, or chordal clique, of order k holds a dense KKT block of order k(k+1)/2)"
    return f"{how}: {last[:300]}" if last else how
