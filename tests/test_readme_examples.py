"""Every `alm-bench` command in the README's code blocks, run through the installed script as a user types it.

How each one runs is stated in PLANS, keyed by the command as the README writes it (comments dropped): `run`
(as written), `budget` (as written plus budget overrides only: fewer iterations, steps or seconds), `cfg` (as
written, without -m, plus `--cfg job` or `--cfg hydra`: it composes, and another test runs it for real), or
`skip` (with the reason: data, hardware or a service this machine does not have). A README command without a
plan fails the test, and so does a plan whose command left the README, so the two cannot drift apart.
Placeholders (G1.mat, <run>, SWEEP, `...`) become files and folders made here or earlier in the same test.
"""

from __future__ import annotations

import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import DATA, REPO, installed_script, read_summary, run_cli

pytestmark = pytest.mark.slow   # ~25 commands, two at a time, each a process start; the costly ones on budgets

SHARED = REPO.parent / "shared" / "data"
SWEEP_TAIL = "problem=hs problem.name=hs071"   # what `...` stands for in the Sweeps section


@dataclass(frozen=True)
class Plan:
    how: str                 # run | budget | cfg | skip
    extra: str = ""          # budget overrides, or the --cfg flag's value for cfg
    why: str = ""            # for skip, and for cfg: where the command runs for real


def _cfg(what: str, where: str) -> Plan:
    return Plan("cfg", what, where)


PLANS: dict[str, Plan] = {
    "alm-bench train": Plan("run"),
    "alm-bench train problem=hs problem.name=hs100 seed=3": Plan("run"),
    "alm-bench train problem=quadratic problem.instance=random problem.dim=200 problem.n_eq=40 problem.n_ineq=80":
        Plan("budget", "controller.max_outer_iterations=2"),   # ~20 s for the whole solve on 2 idle cores
    "alm-bench train controller.rho=10 controller.rho_growth=4 controller.feasibility_tol=1e-10": Plan("run"),
    "alm-bench train controller.inner_optimizer.name=Adam controller.inner_optimizer.lr=0.01 "
    "controller.newton_polish=false": Plan("run"),   # issue 19 item 3: L-BFGS's options stay with L-BFGS
    "alm-bench train -m problem=hs problem.name=hs071,hs035": Plan("run"),
    "alm-bench train -m experiment=hs_suite": Plan("run"),
    "alm-bench train problem=synthetic controller=ema_alm": Plan("budget", "problem.max_steps=3"),
    "alm-bench train problem=synthetic controller=unconstrained":
        _cfg("job", "the controller sweep made below for `report SWEEP` trains it for real"),
    "alm-bench train problem=cifar10 controller=ema_alm problem.download=true":
        _cfg("job", "downloads CIFAR-10 (no network here); tests/test_cifar_fuzz.py trains on a tiny CIFAR copy"),
    "alm-bench train problem=cifar10 budget=weight_norm problem.precision=bf16":
        _cfg("job", "needs the CIFAR-10 files, which tests do not have"),
    "alm-bench train -m experiment=seed001_cifar10":
        _cfg("job", "five ResNet-18 trainings on CIFAR-10; tests/test_experiments.py checks its sweep"),
    "alm-bench train resume=outputs/runs/<date>/<run>": Plan("run"),   # <run>: the folder `alm-bench train` made
    "torchrun --nproc_per_node=4 -m alm_bench train problem=cifar10 controller=ema_alm":
        Plan("skip", why="needs 4 GPUs and CIFAR-10; tests/test_ddp.py runs torchrun with 2 CPU processes"),
    "alm-bench solve maxcut G1.mat": Plan("run"),
    "alm-bench solve maxcut G14.txt controller=classic_alm": Plan("budget", "controller.time_limit_s=1"),
    "alm-bench solve maxcut G1.mat -m controller=bala,mixing,classic_alm,scs":
        Plan("budget", "controller.time_limit_s=2"),   # SCS takes minutes on G1; the others stop well before
    "alm-bench solve maxcut random:n=100000,degree=8,seed=0 controller=mixing":
        _cfg("job", "3 minutes (python -m bench.scale runs it); tests/test_graph_generators.py solves a spec"),
    "alm-bench solve maxcut planar:n=10000,density=99,seed=1 controller=mixing problem.tol=1e-4":
        Plan("budget", "controller.time_limit_s=2"),   # ~18 s in all to 1e-4
    "alm-bench solve sdp theta1.dat-s": Plan("budget", "controller.max_iterations=60"),  # BALA stalls at 1e-4
    "alm-bench solve sdp theta1.dat-s controller=csdp": Plan("run"),
    "alm-bench train problem=lp controller=bala": Plan("run"),
    "alm-bench train -m problem=hs problem.name=hs071,hs035 seed=0,1,2": Plan("run"),
    "alm-bench train -m hydra/launcher=joblib hydra.launcher.n_jobs=4 ...":
        _cfg("hydra", "tests/test_sweeps.py runs a joblib sweep"),
    "alm-bench train -m hydra/launcher=submitit_local ...": _cfg("hydra", "tests/test_sweeps.py runs it"),
    "alm-bench train -m hydra/launcher=slurm hydra.launcher.partition=gpu ...":
        Plan("skip", why="needs a SLURM cluster; tests/test_run_folder.py checks the one-line error without one"),
    "alm-bench train -m experiment=tune_classic_alm":
        _cfg("hydra", "20 Optuna trials; tests/test_sweeps.py runs 3"),
    "alm-bench report outputs/multiruns/2026-11-23_10-03-12": Plan("run"),
    "alm-bench report SWEEP --by controller --baseline unconstrained --metric test_accuracy": Plan("run"),
    "alm-bench train problem=custom problem._target_=my_problem.ClosestPointInDisc +problem.radius=2": Plan("run"),
    "WANDB_MODE=online alm-bench train logger=wandb logger.wandb.project=my-project":
        Plan("skip", why="needs a W&B account and the network; tests/test_faults.py checks the offline fallback"),
}


def readme_commands() -> list[tuple[str, str]]:
    """(folder relative to the repository, command) for each alm-bench/torchrun line of the README's bash
    blocks, comments and surrounding spaces dropped; `cd DIR` lines set the folder for the rest of a block."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S):
        folder = "."
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            words = [w for w in line.split() if not re.match(r"^[A-Z_]+=", w)]
            if line.startswith("cd "):
                folder = line[3:].strip()
            elif words and words[0] in ("alm-bench", "torchrun"):
                commands.append((folder, " ".join(line.split())))
    return commands


def test_every_readme_command_has_a_plan_and_every_plan_a_command():
    written = [command for _, command in readme_commands()]
    assert [c for c in written if c not in PLANS] == [], "README commands without a plan in PLANS"
    assert [c for c in PLANS if c not in written] == [], "plans for commands the README no longer shows"


def run_folders(outputs: Path) -> set[Path]:
    return {p for p in [*outputs.glob("runs/*/*"), *outputs.glob("multiruns/*")] if p.is_dir()}


# Commands that need what another one made: they run in a second round.
NEEDS = {"<run>": "alm-bench train", "outputs/multiruns/": "alm-bench train -m problem=hs problem.name=hs071,hs035 "
         "seed=0,1,2", "SWEEP": None}
WORKERS = 2   # two commands at a time: most of each is a process start, which one core does alone


def test_readme_commands_run(tmp_path):
    g1 = SHARED / "gset_mat_suitesparse_style" / "G1.mat"   # the README's G1.mat; a G-set graph of the same
    places = {"G1.mat": str(g1 if g1.is_file() else DATA / "G14_suitesparse.mat"),   # layout where ../shared
              "G14.txt": str(DATA / "G14.txt"), "theta1.dat-s": str(DATA / "theta1.dat-s"),   # is absent
              "...": SWEEP_TAIL}
    commands = [(k, folder, command) for k, (folder, command) in enumerate(readme_commands())]
    skipped = [f"{c}: {PLANS[c].why}" for _, _, c in commands if PLANS[c].how == "skip"]
    later = [job for job in commands if PLANS[job[2]].how != "skip" and any(n in job[2] for n in NEEDS)]
    first = [job for job in commands if PLANS[job[2]].how != "skip" and job not in later]
    made: dict[str, Path] = {}   # command -> the run or sweep folder it made
    timings: list[str] = []

    def one(job: tuple[int, str, str]) -> None:
        k, folder, command = job
        plan, outputs = PLANS[command], tmp_path / f"outputs{k}"   # each its own outputs tree
        args = " ".join(substitute(word, places) for word in command.split()[1:]).split()
        args += plan.extra.split() if plan.how == "budget" else []
        if plan.how == "cfg":
            args = [a for a in args if a != "-m"] + ["--cfg", plan.extra]
        start = time.perf_counter()
        out = run_cli(*args, cwd=REPO / folder, script=True, timeout=300, env={"ALM_BENCH_OUTPUTS": str(outputs)})
        timings.append(f"{time.perf_counter() - start:5.1f} s  {plan.how:6}  {command}")
        assert out.returncode == 0, f"{command} ({plan.how}): exit {out.returncode}\n{out.stderr[-2000:]}"
        assert "Traceback" not in out.stderr, command
        new = run_folders(outputs)
        if plan.how == "cfg":
            assert not new and (("launcher:" in out.stdout or "sweeper:" in out.stdout) if plan.extra == "hydra"
                                else "problem:" in out.stdout), command
        elif not command.startswith("alm-bench report"):
            assert len(new) == 1, f"{command} made {sorted(new)}"
            made[command] = new.pop()
            summaries = [made[command] / "summary.json"] if (made[command] / "summary.json").exists() \
                else sorted(made[command].glob("*/summary.json"))
            assert summaries and all(read_summary(f.parent)["status"] in ("converged", "max_iterations", "stopped")
                                     for f in summaries), command

    with ThreadPoolExecutor(WORKERS) as pool:
        sweep = pool.submit(controller_sweep, tmp_path / "controller_sweep")
        for done in [pool.submit(one, job) for job in first]:
            done.result()
        places.update({"outputs/runs/<date>/<run>": str(made[NEEDS["<run>"]]), "SWEEP": str(sweep.result()),
                       "outputs/multiruns/2026-11-23_10-03-12": str(made[NEEDS["outputs/multiruns/"]])})
        for done in [pool.submit(one, job) for job in later]:
            done.result()
    print("\n".join(timings + ["skipped:"] + skipped))
    assert len(skipped) == sum(p.how == "skip" for p in PLANS.values())
    assert (Path(places["outputs/multiruns/2026-11-23_10-03-12"]) / "report" / "report.md").is_file()
    assert "test_accuracy" in (Path(places["SWEEP"]) / "report" / "paired.md").read_text()   # --by controller
    assert sorted(p.name for p in made["alm-bench train"].iterdir()) == \
        [".hydra", "checkpoints", "summary.json", "trace.csv"]


def substitute(word: str, places: dict[str, str]) -> str:
    if word in places:
        return places[word]
    for placeholder, value in places.items():   # inside a word: resume=outputs/runs/<date>/<run>
        if "/" in placeholder:
            word = word.replace(placeholder, value)
    return word


def controller_sweep(sweep: Path) -> Path:
    """A small paired sweep for `report SWEEP --by controller --baseline unconstrained`: the README's
    seed001 design (AdamW vs EMA-ALM on paired seeds) on tiny synthetic data, a few steps each."""
    out = run_cli("train", "-m", "problem=synthetic", "controller=unconstrained,ema_alm", "seed=1,2",
                  "problem.max_steps=3", "problem.synthetic.train_size=300", "problem.synthetic.test_size=100",
                  "problem.synthetic.image_size=16", f"hydra.sweep.dir={sweep}", script=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert all(read_summary(sweep / str(k))["status"] != "failed" for k in range(4))
    return sweep


def test_the_helper_finds_the_installed_script():
    assert installed_script().name == "alm-bench" and shutil.which(str(installed_script()))
