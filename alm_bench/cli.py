"""The `alm-bench` command. Each subcommand forwards its overrides to the one Hydra task in task.py."""

from __future__ import annotations

import gc
import importlib.util
import os
import re
import sys
from pathlib import Path

import typer

from alm_bench import __version__, completion
from alm_bench.completion import config_choices


def _groups_help() -> str:
    lines = [f"{group}: {', '.join(options)}" for group, options in config_choices().items()]
    return "Config groups (choose with group=option):\n\n" + "\n\n".join(lines)


class App(typer.Typer):
    """The command, which first answers a shell's completion request when one is made (completion.py)."""

    def __call__(self, *args, **kwargs):
        shell = os.environ.get(completion.COMPLETE_VAR)
        if shell:
            sys.stdout.write(completion.respond(dict(os.environ)))
            raise SystemExit(0)
        if sys.argv[1:] in (["--show-completion"], ["--install-completion"]):
            sys.argv.append(completion.detect_shell())  # as Typer's own options did: the login shell
        return super().__call__(*args, **kwargs)


app = App(
    name="alm-bench",
    help="Run constrained optimisation under augmented Lagrangian controllers (Hydra configs, W&B traces).",
    epilog=_groups_help(),
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,   # ours (completion.py) completes group=option pairs in bash and zsh
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"alm-bench {__version__}")
        raise typer.Exit()


def _completion(action):
    """An eager option's callback that prints `action(shell)` (a script, or what was installed) and exits."""
    def callback(shell: str | None) -> None:
        if shell is not None:
            try:
                text = action(shell)
            except ValueError as err:
                typer.echo(f"alm-bench: error: {err}", err=True)
                raise typer.Exit(2) from None
            typer.echo(text, nl=not text.endswith("\n"))
            raise typer.Exit()
    return callback


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
          debug: bool = typer.Option(False, "--debug", help="Show full tracebacks, also for input errors."),
          show_completion: str = typer.Option(
              None, "--show-completion", metavar="[bash|zsh]", callback=_completion(completion.script), is_eager=True,
              expose_value=False, help='Print the completion script: eval "$(alm-bench --show-completion bash)".'),
          install_completion: str = typer.Option(
              None, "--install-completion", metavar="[bash|zsh]", callback=_completion(completion.install), is_eager=True,
              expose_value=False, help="Add that eval line to ~/.bashrc or ~/.zshrc.")) -> None:
    """alm-bench: augmented Lagrangian experiments."""
    if debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra's own switch; alm-bench's errors honour it too


# Launcher/sweeper choices that come from optional Hydra plugins, and the module each needs.
PLUGINS = {
    "hydra/launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
    "hydra/launcher=submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
    "hydra/launcher=submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
    "hydra/launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
    "hydra/launcher=ray": ("hydra_plugins.hydra_ray_launcher", "hydra-ray-launcher"),
    "hydra/sweeper=optuna": ("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper"),
    "experiment=tune_classic_alm": ("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper"),
}


def missing_plugin(args: list[str]) -> str | None:
    """The one-line error for a launcher/sweeper whose plugin is not installed, else None."""
    for arg in args:
        module, package = PLUGINS.get(arg, (None, None))
        if module and importlib.util.find_spec(module) is None:
            return (f"{arg} needs the {package} plugin, which is not installed: "
                    f"pip install 'alm-bench[sweeps]' (or pip install {package})")
    return None


OPTION = re.compile(r"^[A-Za-z0-9_.-]+$")
OWN_CONFIGS = ("--config-dir", "-cd", "--config-path", "-cp")   # a user's folder may add options to a group


def unknown_option(args: list[str]) -> str | None:
    """The one-line error for `group=option` naming an option the group does not have (Hydra would exit 1
    with a multi-line message), else None. Comma lists (sweeps) are checked element by element; sweep
    functions (choice(...), glob(...)) and runs with a config folder of the user's own are left to Hydra."""
    if any(arg.split("=", 1)[0] in OWN_CONFIGS for arg in args) or any("hydra.searchpath" in arg for arg in args):
        return None
    choices = config_choices()
    for arg in args:
        group, sep, value = arg.partition("=")
        if not sep or group not in choices or "(" in value:
            continue
        for option in value.split(","):
            if OPTION.match(option) and option != "null" and option not in choices[group]:
                return f"{group}={option}: no such option; {group} is one of {', '.join(choices[group])}"
    return None


# Hydra flags that print something and run no job (so need no torch).
NO_JOB_FLAGS = {"-h", "--help", "-hh", "--hydra-help", "-c", "--cfg", "-i", "--info", "-sc", "--shell-completion"}


def import_for_a_run() -> None:
    """Import what every run needs (torch) and take those objects out of the garbage collector's sight.
    They live until exit anyway; left in, every full collection of the run and the collections at exit walk
    torch's (and its compiler's) hundreds of thousands of objects: ~0.4 s of a 3 s toy run. Once per process."""
    import alm_bench.runners  # noqa: F401  (torch)

    if not getattr(import_for_a_run, "done", False):
        gc.freeze()
        import_for_a_run.done = True


def launch(args: list[str]) -> None:
    """Run the Hydra task with `args` as its command line (overrides, -m, --cfg, -h, ...)."""
    problem = missing_plugin(args) or unknown_option(args)
    if problem:
        typer.echo(f"alm-bench: error: {problem}", err=True)
        raise typer.Exit(2)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # so problem._target_=my_module.MyProblem finds the user's module
    from alm_bench.errors import UserError
    from alm_bench.task import main
    from alm_bench.task.from_run import starting_from_a_run

    if not NO_JOB_FLAGS.intersection(args):
        import_for_a_run()
    try:
        with starting_from_a_run(args) as hydra_args:  # a rerun or resume= composes the run folder's config
            sys.argv = ["alm-bench", *hydra_args]
            main()
    except UserError as err:   # raised before Hydra starts (a run folder that cannot be read)
        typer.echo(f"alm-bench: error: {err}", err=True)
        raise typer.Exit(2) from None
    finally:
        if "wandb" in sys.modules:
            # W&B's service writes run files asynchronously; its own atexit hook, which waits for it, is not
            # reliable under multiprocessing (W&B's docs), so the command waits here before it exits.
            sys.modules["wandb"].teardown()


HYDRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command(context_settings=HYDRA_ARGS, add_help_option=False)
def train(overrides: list[str] = typer.Argument(
        None, show_default=False,
        help="Hydra overrides (group=option, key=value), -m/--multirun for sweeps, --cfg job, -h/--help, --info.")
) -> None:
    """Solve a problem with a controller: `alm-bench train problem=hs problem.name=hs071`.

    Everything after `train` goes to Hydra; `alm-bench train --help` shows the config groups.
    """
    launch(list(overrides or []))


@app.command()
def report(
    paths: list[Path] = typer.Argument(..., help="Run folders, sweep folders, or folders above them."),
    metric: list[str] = typer.Option(None, "--metric", "-k", help="Final metric to compare (repeatable)."),
    by: str = typer.Option(None, "--by", help="Override that separates the two settings to pair, e.g. controller."),
    baseline: str = typer.Option(None, "--baseline", help="Which value of --by is the baseline."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for the report (default: PATH/report)."),
) -> None:
    """Tabulate runs, plot their traces, and compare two settings on paired seeds."""
    from alm_bench.errors import UserError
    from alm_bench.report.build import report as build_report

    try:
        build_report(paths, out=out, metrics=metric or None, by=by, baseline=baseline)
    except UserError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        typer.echo(f"alm-bench: error: {err}", err=True)
        raise typer.Exit(2) from None


# ---- solve: sugar over the same Hydra task, with the conic problem and BALA preselected ----------------

solve_app = typer.Typer(help="Solve an SDP: `alm-bench solve maxcut G1.mat`, `alm-bench solve sdp theta1.dat-s`.",
                        no_args_is_help=True, rich_markup_mode=None)
app.add_typer(solve_app, name="solve")


def _quoted(value: str) -> str:
    """A Hydra override value that keeps spaces, '=' and other grammar characters literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def path_override(files: str) -> str:
    """problem.path=FILE as an absolute path; FILE1,FILE2 becomes a sweep over the files (with -m)."""
    paths = [str(Path(f).expanduser().resolve()) for f in files.split(",") if f]
    return "problem.path=" + ",".join(_quoted(p) for p in paths)


# Hydra flags that take a value (`--cfg job`, `--info defaults`, ...).
HYDRA_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--info", "-i", "--config-dir", "-cd", "--experimental-rerun"}


def split_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """(Hydra flags with their values, overrides): Hydra's argparse wants every override after the flags."""
    flags, overrides = [], []
    it = iter(range(len(args)))
    for k in it:
        arg = args[k]
        if arg.startswith("-"):
            flags.append(arg)
            if arg in HYDRA_VALUE_FLAGS and k + 1 < len(args) and "=" not in args[k + 1]:
                flags.append(args[k + 1])
                next(it, None)
        else:
            overrides.append(arg)
    return flags, overrides


def _solve(problem: str, file: str, overrides: list[str] | None) -> None:
    flags, rest = split_flags(list(overrides or []))
    source = graph_override(file) if problem == "maxcut" else path_override(file)
    launch(["--config-name", "solve", *flags, f"problem={problem}", source, *rest])


@solve_app.command("maxcut", context_settings=HYDRA_ARGS)
def solve_maxcut(
    file: str = typer.Argument(..., help="Graph file: .mat (SuiteSparse or plain), rudy/G-set text, or .mtx. "
                                         "Several, comma-separated, sweep with -m. Or a generator spec "
                                         "(toroidal:316x316, random:n=100000,degree=8,seed=0; see "
                                         "`alm-bench graph generate --help`)."),
    overrides: list[str] = typer.Argument(None, show_default=False,
                                          help="Hydra overrides, e.g. controller=classic_alm problem.tol=1e-4, -m."),
) -> None:
    """Max-Cut SDP bound (certified), a rounded cut, eps_p/eps_d/eps_g and timings; BALA by default."""
    _solve("maxcut", file, overrides)


@solve_app.command("sdp", context_settings=HYDRA_ARGS)
def solve_sdp(
    file: str = typer.Argument(..., help="SDPA sparse file (.dat-s, gzip accepted)."),
    overrides: list[str] = typer.Argument(None, show_default=False,
                                          help="Hydra overrides, e.g. problem.trace_bound=100 controller=scs, -m."),
) -> None:
    """An SDP in SDPA format: certified bound and eps_p/eps_d/eps_g; BALA by default."""
    _solve("sdp", file, overrides)


# ---- graph: generated graphs (alm_bench/conic/graphs.py) ------------------------------------------------

def graph_override(argument: str) -> str:
    """`solve maxcut ARG`: a generator spec becomes problem.graph='SPEC' (quoted: a spec holds '=' and ','),
    anything else names files (problem.path)."""
    from alm_bench.conic.graphs import is_spec

    if is_spec(argument) and not Path(argument).exists():
        return "problem.graph=" + _quoted(argument)
    return path_override(argument)


graph_app = typer.Typer(help="Generated graphs: `alm-bench graph generate toroidal:316x316 -o torus.txt`.",
                        no_args_is_help=True, rich_markup_mode=None)
app.add_typer(graph_app, name="graph")


@graph_app.command("generate")
def graph_generate(
    spec: str = typer.Argument(..., help="FAMILY:OPTIONS. toroidal:RxC[xD...] (a toroidal grid), "
                                         "random:n=N,degree=D (or m=EDGES) (uniform random), "
                                         "planar:n=N,density=PERCENT (Delaunay of random points, PERCENT of "
                                         "3n-6 edges kept, default 100); every family also takes seed=S "
                                         "(default 0) and weights=1|pm1 (default 1)."),
    out: Path = typer.Option(None, "--out", "-o", help="The rudy text file to write (.gz: compressed); default "
                                                       "<spec name>.txt in the current folder."),
) -> None:
    """Write a generated graph as rudy text (`n m`, then `i j w` per edge), the same graph each time for the
    same spec. `alm-bench solve maxcut SPEC` solves it without a file."""
    from alm_bench.conic.graphs import generate, parse_spec
    from alm_bench.conic.readers import rudy
    from alm_bench.errors import UserError

    try:
        parsed = parse_spec(spec)
        w = generate(parsed)
        path = out or Path(f"{parsed.name}.txt")
        try:
            rudy.write_graph(path, w)
        except OSError as err:
            raise UserError(f"{path}: cannot write it ({err.strerror or err})") from None
    except UserError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        typer.echo(f"alm-bench: error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{path}: {w.shape[0]} vertices, {w.nnz // 2} edges ({parsed.text})")
