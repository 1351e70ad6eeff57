"""bench/gpu_check.sh --dry-run: the one-call GPU check's every step on the CPU at toy sizes, so that the script
a GPU session runs once is known to work before it gets there (CI has no GPU)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow   # the script starts pytest and four solver processes


def test_dry_run_writes_the_whole_table(tmp_path: Path) -> None:
    out = tmp_path / "gpu.md"
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    env.pop("OUT", None)
    result = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = out.read_text()
    # the cuda tests ran their quick bodies on the CPU and passed
    tests = re.findall(r"^\| (test_\S+) \| (\w+)", text, flags=re.M)
    assert len(tests) >= 5 and all(outcome == "passed" for _, outcome in tests), tests
    # a row per graph and solver, each with a status, a time and an eps
    conic = re.findall(r"^\| (G14|random n=1000) \(dry run\) \| (bala|classic_alm) \| cpu \| (\w+) \| ([\d.]+) \| "
                       r"\S+ \| ([\d.e+-]+) ", text, flags=re.M)
    assert len(conic) == 4, text
    assert all(float(time) > 0 and float(eps) < 1 for *_, time, eps in conic)
    assert ("G14", "bala", "converged") in [c[:3] for c in conic]
    # the training row: images/s for both steps
    training = re.search(r"^\| small_cnn \| 8 \| bf16 \| cpu \| (\d+) \| (\d+) \| ([\d.]+) \|", text, flags=re.M)
    assert training and int(training.group(1)) > 0 and int(training.group(2)) > 0
    assert "NCCL" in text


def test_unknown_argument_is_one_line() -> None:
    result = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--bogus"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "unknown argument --bogus" in result.stderr
