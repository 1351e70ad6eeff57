"""The `alm-bench` command. Each subcommand forwards its overrides to the one Hydra task in task.py."""

from __future__ import annotations

import os
import sys
from importlib import resources

import typer

from alm_bench import __version__


def config_choices() -> dict[str, list[str]]:
    """Every config group under conf/ and the options it offers (file names without .yaml)."""
    root = resources.files("alm_bench.conf")
    return {
        group.name: sorted(f.name[: -len(".yaml")] for f in group.iterdir() if f.name.endswith(".yaml"))
        for group in sorted(root.iterdir(), key=lambda p: p.name)
        if group.is_dir() and not group.name.startswith(("_", "."))
    }


def complete_override(incomplete: str) -> list[str]:
    """Shell completion: `contr` -> `controller=`, `controller=c` -> `controller=classic_alm`."""
    choices = config_choices()
    if "=" in incomplete:
        group, prefix = incomplete.split("=", 1)
        return [f"{group}={o}" for o in choices.get(group.lstrip("+~"), []) if o.startswith(prefix)]
    return [f"{g}=" for g in choices if g.startswith(incomplete)]


def _groups_help() -> str:
    lines = [f"{group}: {', '.join(options)}" for group, options in config_choices().items()]
    return "Config groups (choose with group=option):\n\n" + "\n\n".join(lines)


app = typer.Typer(
    name="alm-bench",
    help="Run constrained optimisation under augmented Lagrangian controllers (Hydra configs, W&B traces).",
    epilog=_groups_help(),
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"alm-bench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """alm-bench: augmented Lagrangian experiments."""


def launch(args: list[str]) -> None:
    """Run the Hydra task with `args` as its command line (overrides, -m, --cfg, -h, ...)."""
    sys.argv = ["alm-bench", *args]
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # so problem._target_=my_module.MyProblem finds the user's module
    from alm_bench.task import main

    main()


HYDRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command(context_settings=HYDRA_ARGS, add_help_option=False)
def train(overrides: list[str] = typer.Argument(
        None, autocompletion=complete_override, show_default=False,
        help="Hydra overrides (group=option, key=value), -m/--multirun for sweeps, --cfg job, -h/--help, --info.")
) -> None:
    """Solve a problem with a controller: `alm-bench train problem=hs problem.name=hs071`.

    Everything after `train` goes to Hydra; `alm-bench train --help` shows the config groups.
    """
    launch(list(overrides or []))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
