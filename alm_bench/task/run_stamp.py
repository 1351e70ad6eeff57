"""The time stamp in a run folder's name, the same on every rank of one `torchrun` launch.

Registered as the OmegaConf resolver `alm_run_stamp` (used by hydra.run.dir in conf/config.yaml).
Single processes get the current time to the microsecond. Under torchrun every rank is a child of
the same elastic agent, so the agent's start time and pid name one folder that all ranks agree on.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf


def _process_start(pid: int) -> datetime | None:
    """Start time of a process from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat: start time in clock ticks after boot
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def run_stamp() -> str:
    if "TORCHELASTIC_RUN_ID" in os.environ and "LOCAL_RANK" in os.environ:
        agent = os.getppid()
        started = _process_start(agent)
        if started is not None:
            return f"{started:%Y-%m-%d}/{started:%H-%M-%S}-torchrun{agent}"
    return f"{datetime.now():%Y-%m-%d/%H-%M-%S-%f}"


def register() -> None:
    if not OmegaConf.has_resolver("alm_run_stamp"):
        OmegaConf.register_new_resolver("alm_run_stamp", run_stamp)
