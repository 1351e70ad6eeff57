"""Runs that start from a run folder's own composed config instead of conf/:

    alm-bench train --config-dir <run folder>/.hydra --config-name config [key=value ...]   rerun it exactly
    alm-bench train resume=<run folder> [budget, logging or device changes]                continue it

A run folder's .hydra/config.yaml is the composed config (every group's node, the seed, ...); composing conf/
again from the saved command line gives the same config only while conf/ is unchanged, and composing the
saved file as Hydra's primary config loses alm-bench's own Hydra settings (run folders, the sweep summary).
So the command is given a generated primary config: one option per config group holding that group's saved
node (named as the run chose it, so run folders and labels read as the original's), the saved top-level
keys, and alm-bench's Hydra settings; conf/ stays on the search path for anything the command line adds.
`task.resume.check_resume` then compares the composed config with the saved one field by field.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Iterator

from omegaconf import OmegaConf

from alm_bench.errors import UserError

CONFIG_FOLDER_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp")
CONFIG_NAME_FLAGS = ("--config-name", "-cn")
SAVED = ".hydra"


def run_folder(path: str | Path) -> Path | None:
    """The run folder that `path` names (the folder itself or its .hydra), or None when it is not one."""
    path = Path(path).expanduser()
    if (path / SAVED / "config.yaml").is_file() and (path / SAVED / "hydra.yaml").is_file():
        return path
    if path.name == SAVED and (path / "config.yaml").is_file() and (path / "hydra.yaml").is_file():
        return path.parent
    return None


def _flag_value(args: list[str], k: int, flags: tuple[str, ...]) -> tuple[str | None, int]:
    """(value, arguments used) when args[k] is one of `flags` (`--flag value` or `--flag=value`)."""
    arg = args[k]
    for flag in flags:
        if arg == flag and k + 1 < len(args):
            return args[k + 1], 2
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1:], 1
    return None, 0


def _resume_value(arg: str) -> str | None:
    key, sep, value = arg.lstrip("+").partition("=")
    return value.strip("'\"") if sep and key == "resume" and value not in ("", "null") else None


def plan(args: list[str]) -> tuple[Path | None, list[str]]:
    """(the run folder to start from, the command line without the flags that named it); (None, args) for a
    run composed from conf/ as usual. A --config-dir that is not a run folder (a folder of the user's own
    configs) stays as it is."""
    folder: Path | None = None
    how = ""
    rest: list[str] = []
    config_name = None
    k = 0
    while k < len(args):
        value, used = _flag_value(args, k, CONFIG_FOLDER_FLAGS)
        if used and run_folder(value) is not None:
            folder, how = run_folder(value), f"{args[k].split('=')[0]} {value}"
            k += used
            continue
        name, used_name = _flag_value(args, k, CONFIG_NAME_FLAGS)
        if used_name:
            config_name = name
            rest.extend(args[k:k + used_name])
            k += used_name
            continue
        rest.append(args[k])
        k += 1
    resumed = [Path(v) for v in map(_resume_value, rest) if v is not None]
    if folder is not None and config_name not in (None, "config"):
        raise UserError(f"{how}: a run folder holds one config, config.yaml (the composed one), not "
                        f"{config_name}; rerun it with: alm-bench train --config-dir {folder}/.hydra --config-name "
                        f"config")
    if resumed and folder is None:
        folder = run_folder(resumed[-1])
        if folder is None:
            raise UserError(f"resume={resumed[-1]}: not a run folder (no .hydra/config.yaml in it)")
    elif resumed and run_folder(resumed[-1]) != folder:
        raise UserError(f"resume={resumed[-1]} and {how} name different run folders; a resumed run starts "
                        f"from the config of the run it continues")
    if folder is None:
        return None, args
    # The saved config is whole, so an override that added a key then (+key=value) sets it now (++key=value).
    rest = [f"++{a.lstrip('+')}" if a.startswith("+") and not a.startswith("++") and "=" in a else a for a in rest]
    drop = {"--config-name", "-cn"}
    rest = [a for k, a in enumerate(rest)
            if a.split("=")[0] not in drop and not (k > 0 and rest[k - 1] in drop)]
    return folder, rest


def _load_yaml(path: Path, what: str) -> dict:
    """A YAML file as plain containers, interpolations kept as written (as Hydra saved them)."""
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:  # OSError, a YAML error, a list instead of a mapping
        raise UserError(f"{path}: cannot read the run's {what} ({' '.join(str(err).split())[:200]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the run's {what} is not a mapping")
    return data


def _write_yaml(path: Path, comment: str, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {comment}\n" + OmegaConf.to_yaml(OmegaConf.create(data)))


def write_primary_config(folder: Path, target: Path) -> None:
    """A primary config in `target` that composes to `folder`'s saved config (see the module's docstring)."""
    saved = _load_yaml(folder / SAVED / "config.yaml", "composed config")
    hydra_saved = _load_yaml(folder / SAVED / "hydra.yaml", "Hydra settings").get("hydra", {})
    choices = (hydra_saved.get("runtime") or {}).get("choices") or {}
    package = OmegaConf.to_container(OmegaConf.create((resources.files("alm_bench.conf") / "config.yaml")
                                                      .read_text()), resolve=False)

    hydra_choices = [entry for entry in package.get("defaults", [])   # alm-bench's choices of Hydra's groups
                     if isinstance(entry, dict) and next(iter(entry)).startswith("override hydra/")]
    # Saved values win over the machine's conf/local (it only adds what the run did not record, e.g. a
    # launcher's cluster settings); groups follow in the saved order, so the composed config reads the same.
    defaults: list = [{"optional local": "default"}, "_self_"]
    top = {}
    for key, node in saved.items():
        option = choices.get(key)
        if option and isinstance(node, dict):   # a group's node, e.g. problem=hs: its own option file
            _write_yaml(target / key / f"{option}.yaml", f"{key}={option} as composed in {folder}", node)
            defaults.append({key: option})
        else:   # a top-level key (seed, ...) or a node that no group of its name chose
            top[key] = node
    defaults += hydra_choices   # Hydra wants its overrides last
    hydra_node = dict(package.get("hydra", {}))
    hydra_node["searchpath"] = ["pkg://alm_bench.conf"]
    _write_yaml(target / "config.yaml", f"generated by alm-bench from {folder / SAVED / 'config.yaml'}",
                {"defaults": defaults, **top, "hydra": hydra_node})


@contextmanager
def starting_from_a_run(args: list[str]) -> Iterator[list[str]]:
    """The command line to hand to Hydra: `args` as they are, or, when they start from a run folder, pointed
    at a generated primary config that lives while the command runs."""
    folder, rest = plan(args)
    if folder is None:
        yield args
        return
    target = Path(tempfile.mkdtemp(prefix="alm-bench-run-config-"))
    try:
        write_primary_config(folder, target)
        yield ["--config-path", str(target), "--config-name", "config", *rest]
    finally:
        shutil.rmtree(target, ignore_errors=True)
