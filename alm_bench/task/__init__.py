"""The Hydra task behind every command, and the helpers only it uses: the device choice, seeding, the run
folder's time stamp, and the check that a `resume=` run can continue the saved one. `run(cfg, output_dir)` is
plain Python (tests call it directly); `main` is its @hydra.main wrapper, which the CLI calls."""

from alm_bench.task.job import build, main, run

__all__ = ["build", "main", "run"]
