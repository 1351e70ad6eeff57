"""`pip install .` works: the configs ship inside the wheel and Hydra finds them from any folder."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import venv
import zipfile

import pytest

from conftest import REPO, read_summary

pytestmark = pytest.mark.slow   # builds a wheel and installs it into a fresh venv, in subprocesses


def test_wheel_install_runs_from_another_folder(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".venv", ".git", "outputs", "wandb", "build", "dist",
                                                             "*.egg-info", "__pycache__", ".pytest_cache"))
    # Build with this environment's setuptools (no network needed), from a copy so the repo stays clean.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("alm_bench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"alm_bench/conf/config.yaml", "alm_bench/conf/problem/hs.yaml",
            "alm_bench/conf/controller/classic_alm.yaml"} <= names
    # every module and config of the source tree ships (a package missing from pyproject's list would not)
    shipped = {str(p.relative_to(src)) for p in (src / "alm_bench").rglob("*.py")}
    shipped |= {"alm_bench/conf/" + str(p.relative_to(src / "conf")) for p in (src / "conf").rglob("*.yaml")}
    assert shipped - names == set()

    # A fresh venv that borrows only the third-party packages of this one (torch is 5 GB: not reinstalled).
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with open(f"{purelib}/borrowed.pth", "w") as f:
        f.write("\n".join(site.getsitepackages()) + "\n")  # .pth files there (our editable finder) are not run
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=300)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(py), "-c", "import alm_bench; print(alm_bench.__file__)"], cwd=elsewhere,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(purelib), f"imported {where}, not the wheel"
    out = subprocess.run([str(env_dir / "bin" / "alm-bench"), "train", "problem=hs", "problem.name=hs035",
                          f"hydra.run.dir={tmp_path / 'run'}"], cwd=elsewhere, capture_output=True, text=True,
                         timeout=300, env={"PATH": "/usr/bin:/bin", "WANDB_MODE": "offline", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert abs(read_summary(tmp_path / "run")["objective"] - 1 / 9) < 1e-9
