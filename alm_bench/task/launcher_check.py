"""A sweep on a SLURM launcher needs a SLURM cluster: without `srun` on the PATH, say so in one line before the
sweep starts (submitit's own error is a 25-line traceback, after an empty sweep folder has been made).
A Hydra callback, so it sees the launcher however it was chosen: on the command line or in conf/local."""

from __future__ import annotations

import shutil
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SLURM_LAUNCHERS = ("hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",)


def slurm_missing(launcher_target: str | None, which=shutil.which) -> str | None:
    """The one-line error for a SLURM launcher on a machine without SLURM, else None."""
    if launcher_target not in SLURM_LAUNCHERS or which("srun") is not None:
        return None
    return ("the SLURM launcher needs a SLURM cluster, and this machine has none (no srun on the PATH): run the "
            "sweep on the cluster's login node, or here with hydra/launcher=joblib or submitit_local")


class LauncherCheck(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        problem = slurm_missing(config.hydra.launcher.get("_target_"))
        if problem:
            print(f"alm-bench: error: {problem}", file=sys.stderr)
            raise SystemExit(2)   # past Hydra's error report, which would print a traceback
