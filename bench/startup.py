"""Start-up: wall time of the `alm-bench` command from a fresh process, against `python -c "import torch"` (the
floor of any run that solves with torch) measured in the same loop, alternating, the best of `repeats`.

Commands: `alm-bench --help`, `alm-bench train --help` (Hydra composes the config; no torch), and `alm-bench
train` on the seed toy (min x² s.t. x ≥ 3: a 0.1 s solve, so nearly all start-up). The last column is the
command's time over importing torch (1.00: nothing but torch; its optimizer's first use also imports torch's
compiler, about as much again). Run folders go to a temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    "alm-bench --help": [sys.executable, "-m", "alm_bench", "--help"],
    "alm-bench train --help": [sys.executable, "-m", "alm_bench", "train", "--help"],
    "alm-bench train (toy)": [sys.executable, "-m", "alm_bench", "train"],
}


def wall_times(repeats: int) -> dict[str, float]:
    """The best wall time of each command over `repeats` alternating rounds (load from other processes only
    ever adds time, so the minimum is the estimate)."""
    best = dict.fromkeys(COMMANDS, float("inf"))
    with tempfile.TemporaryDirectory() as outputs:
        env = {**os.environ, "ALM_BENCH_OUTPUTS": outputs, "WANDB_MODE": "disabled"}
        for _ in range(repeats):
            for name, command in COMMANDS.items():
                start = time.perf_counter()
                subprocess.run(command, env=env, cwd=outputs, check=True, capture_output=True)
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def run(full: bool = False) -> str:
    best = wall_times(7 if full else 3)
    floor = best['python -c "import torch"']
    lines = ["| command | best wall time (s) | ÷ import torch |", "|---|---|---|"]
    lines += [f"| `{name}` | {t:.2f} | {t / floor:.2f} |" for name, t in best.items()]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return "\n".join(lines) + f"\n\n(load average {load:.2f} on {os.cpu_count()} cores when it finished)"


if __name__ == "__main__":
    print(run(full="--full" in sys.argv))

