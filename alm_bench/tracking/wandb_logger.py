"""Weights & Biases tracker. wandb is imported only when this tracker is used.

Mode comes from WANDB_MODE (default offline), so a run never waits on a network it does not have;
an online run whose server cannot be reached within `init_timeout` falls back to offline with a
warning. The run is always finished, also when the run failed.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from alm_bench.errors import one_line
from alm_bench.tracking.base import RunInfo

log = logging.getLogger(__name__)


class WandbTracker:
    def __init__(self, project: str = "alm-bench", entity: str | None = None, mode: str | None = None,
                 tags: list[str] | None = None, init_timeout: float = 30.0) -> None:
        self.project = project
        self.entity = entity
        self.mode = mode or os.environ.get("WANDB_MODE", "offline")
        self.tags = list(tags or [])
        self.init_timeout = init_timeout
        self.run = None

    def _init(self, wandb, run: RunInfo, mode: str):
        return wandb.init(
            project=self.project, entity=self.entity, mode=mode, dir=str(run.output_dir),
            name=run.name, group=run.group, job_type=run.job_type, tags=self.tags + run.tags,
            config=run.config, reinit="finish_previous",
            settings=wandb.Settings(init_timeout=self.init_timeout, silent=True),
        )

    def start(self, run: RunInfo) -> None:
        try:
            import wandb

            try:
                self.run = self._init(wandb, run, self.mode)
            except Exception as e:  # unreachable server, bad key: keep the run, log offline
                if self.mode == "offline":
                    raise
                log.warning(f"W&B {self.mode} init failed ({one_line(e, 250)}); logging offline instead")
                self.run = self._init(wandb, run, "offline")
            self.run.define_metric("step")
            self.run.define_metric("*", step_metric="step")
        except Exception as e:
            self._give_up("start", e)

    def _give_up(self, where: str, error: Exception) -> None:
        """W&B broke: warn once and carry on without it. The local trace never depends on W&B."""
        log.warning(f"W&B failed in {where} ({one_line(error, 250)}); the run goes on without W&B, "
                    f"its trace.csv and summary.json are complete")
        run, self.run = self.run, None
        if run is not None:
            try:
                run.finish(exit_code=1)
            except Exception:
                pass

    def log(self, row: dict[str, float]) -> None:
        if self.run is None:
            return
        try:
            self.run.log(row)
        except Exception as e:
            self._give_up("log", e)

    def finish(self, summary: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            flat = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}
            self.run.summary.update(flat)
            self.run.finish(exit_code=0 if summary.get("status") in ("converged", "max_iterations", "stopped") else 1)
        except Exception as e:
            self._give_up("finish", e)
        self.run = None
