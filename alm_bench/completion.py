"""Shell completion for bash and zsh: `eval "$(alm-bench --show-completion bash)"`.

The shell function passes the line up to the cursor (and, for bash, its COMP_WORDBREAKS) in the environment;
`respond` prints a mode line (`plain`, `nospace` after `group=`, or `files`: let the shell complete file names)
and then the candidates, each relative to the word the shell is completing. Bash splits `problem=h` at `=` and
completes `h`, so `hs` is the answer there, not `problem=hs`; the zsh function moves `problem=` out of the word
(compset -P) so both shells list `hs quadratic ...` after `problem=<TAB>`. Only config files are read: no
Hydra, no torch, so a TAB answers in the time Python starts.
"""

from __future__ import annotations

import os
import shlex
from importlib import resources
from typing import Any

import yaml

COMPLETE_VAR = "_ALM_BENCH_COMPLETE"   # bash | zsh: answer a completion request instead of running

BASH_SCRIPT = r"""
_alm_bench_completion() {
    local IFS=$'\n'
    local -a reply
    reply=( $(env _ALM_BENCH_COMPLETE=bash COMP_LINE="${COMP_LINE:0:$COMP_POINT}" \
              COMP_BREAKS="$COMP_WORDBREAKS" "${COMP_WORDS[0]}" 2>/dev/null) )
    case "${reply[0]}" in
        files) COMPREPLY=(); return 0 ;;          # -o default: file names
        nospace) compopt -o nospace ;;
    esac
    COMPREPLY=( "${reply[@]:1}" )
    return 0
}
complete -o default -F _alm_bench_completion alm-bench
"""

ZSH_SCRIPT = r"""
#compdef alm-bench
_alm_bench_completion() {
    local -a reply
    local line="${(j: :)${(@)words[1,CURRENT-1]}} ${PREFIX}"
    reply=( "${(@f)$(env _ALM_BENCH_COMPLETE=zsh COMP_LINE="$line" COMP_BREAKS="=" "${words[1]}" 2>/dev/null)}" )
    [[ "${reply[1]}" == files ]] && { _files; return }
    [[ "$PREFIX" == *=* ]] && compset -P '*='
    if [[ "${reply[1]}" == nospace ]]; then
        compadd -S '' -- "${(@)reply[2,-1]}"
    else
        compadd -- "${(@)reply[2,-1]}"
    fi
}
(( $+functions[compdef] )) || { autoload -Uz compinit && compinit -u }
compdef _alm_bench_completion alm-bench
"""

SCRIPTS = {"bash": BASH_SCRIPT.strip() + "\n", "zsh": ZSH_SCRIPT.strip() + "\n"}
RC_FILES = {"bash": "~/.bashrc", "zsh": "~/.zshrc"}

COMMANDS = ("train", "solve", "report")
ROOT_OPTIONS = ("--help", "--version", "--debug", "--show-completion", "--install-completion")
HYDRA_FLAGS = ("-m", "--multirun", "--cfg", "--help", "--info", "--config-dir", "--config-name", "--resolve")
REPORT_OPTIONS = ("--metric", "--by", "--baseline", "--out", "--help")
# Optional Hydra plugins' choices (their configs live in the plugins, not in conf/).
PLUGIN_CHOICES = {"hydra/launcher": ("basic", "joblib", "submitit_local", "submitit_slurm"),
                  "hydra/sweeper": ("basic", "optuna")}


def detect_shell() -> str:
    return os.path.basename(os.environ.get("SHELL", "bash")) or "bash"


def script(shell: str | None) -> str:
    shell = shell or detect_shell()
    if shell not in SCRIPTS:
        raise ValueError(f"--show-completion {shell}: completion is available for {' and '.join(SCRIPTS)}")
    return SCRIPTS[shell]


# ---- what the config folder offers -------------------------------------------------------------------

def _conf():
    return resources.files("alm_bench.conf")


def config_choices() -> dict[str, list[str]]:
    """Every config group under conf/ and the options it offers (file names without .yaml)."""
    root = _conf()
    groups: dict[str, list[str]] = {}
    for group in sorted(root.iterdir(), key=lambda p: p.name):
        if not group.is_dir() or group.name.startswith(("_", ".")):
            continue
        options = sorted(f.name[: -len(".yaml")] for f in group.iterdir() if f.name.endswith(".yaml"))
        if options:
            groups[group.name] = options
    return groups


def override_choices() -> dict[str, list[str]]:
    """Groups and their options as a command line names them, Hydra's launcher and sweeper included."""
    choices = config_choices()
    launchers = sorted({*PLUGIN_CHOICES["hydra/launcher"],
                        *(f.name[:-5] for f in (_conf() / "hydra" / "launcher").iterdir() if f.name.endswith(".yaml"))})
    return {**choices, "hydra/launcher": launchers, "hydra/sweeper": list(PLUGIN_CHOICES["hydra/sweeper"])}


def _yaml(path) -> dict[str, Any]:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _leaves(node: Any, prefix: str) -> list[str]:
    if not isinstance(node, dict):
        return [prefix]
    return [leaf for key, value in node.items() if key not in ("defaults", "_target_")
            for leaf in _leaves(value, f"{prefix}.{key}")]


def fields(group: str, option: str) -> list[str]:
    """The settable keys of one group option (controller=bala -> controller.rho, controller.beta, ...)."""
    config = _yaml(_conf() / group / f"{option}.yaml")
    node = config.get(group, config) if isinstance(config.get(group), dict) else config  # @package _global_
    return _leaves(node, group)


def _defaults(config_name: str) -> list[Any]:
    """The defaults list of a primary config, the configs it extends first (solve extends config)."""
    entries: list[Any] = []
    for entry in _yaml(_conf() / f"{config_name}.yaml").get("defaults", []):
        entries += _defaults(entry) if isinstance(entry, str) and entry != "_self_" else [entry]
    return entries


def top_keys(config_name: str) -> list[str]:
    """The plain keys (seed, resume, ...) of a primary config and the configs it extends."""
    extends = [e for e in _yaml(_conf() / f"{config_name}.yaml").get("defaults", [])
               if isinstance(e, str) and e != "_self_"]
    keys = [k for entry in extends for k in top_keys(entry)]
    keys += [k for k, v in _yaml(_conf() / f"{config_name}.yaml").items()
             if k not in ("defaults", "hydra") and not isinstance(v, dict)]
    return list(dict.fromkeys(keys))


def chosen(args: list[str], group: str, config_name: str) -> str | None:
    """The option of `group` this command line picks, else the config's default."""
    for arg in reversed(args):
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") == group and value:
            return value.split(",")[0]
    picked = None
    for entry in _defaults(config_name):
        if isinstance(entry, dict):
            for key, value in entry.items():
                if key.removeprefix("override ").strip() == group and isinstance(value, str):
                    picked = value
    return picked


def complete_override(incomplete: str, args: list[str] | None = None, config_name: str = "config") -> list[str]:
    """`contr` -> `controller=`; `controller=c` -> `controller=classic_alm`; `controller.r` ->
    `controller.rho=` (the keys of the chosen option); `se` -> `seed=`."""
    args = args or []
    choices = override_choices()
    if "=" in incomplete:
        key, prefix = incomplete.split("=", 1)
        done, _, last = prefix.rpartition(",")  # a sweep's list: complete its last item
        head = f"{key}={done}," if done else f"{key}="
        return [head + o for o in choices.get(key.lstrip("+~"), []) if o.startswith(last)]
    sign = incomplete[:1] if incomplete[:1] in "+~" else ""
    bare = incomplete[len(sign):]
    if "." in bare:
        group = bare.split(".", 1)[0]
        option = chosen(args, group, config_name) if group in choices else None
        keys = fields(group, option) if option else []
        return [f"{sign}{k}=" for k in keys if k.startswith(bare)]
    names = [*choices, *top_keys(config_name)]
    return [f"{sign}{name}=" for name in names if name.startswith(bare)]


# ---- the request --------------------------------------------------------------------------------------

def _words(line: str) -> list[str]:
    try:
        words = shlex.split(line)
    except ValueError:  # an open quote: the word being typed
        words = line.split()
    return words + [""] if not line or line[-1].isspace() else words


def candidates(line: str) -> tuple[str, list[str]]:
    """(mode, candidates as whole words) for the command line up to the cursor."""
    words = _words(line)
    args, incomplete = words[1:-1], words[-1]
    if not args:
        if incomplete.startswith("-"):
            return "plain", [o for o in ROOT_OPTIONS if o.startswith(incomplete)]
        return "plain", [c for c in COMMANDS if c.startswith(incomplete)]
    if args[-1] in ("--show-completion", "--install-completion"):
        return "plain", [s for s in SCRIPTS if s.startswith(incomplete)]
    command, rest = args[0], args[1:]
    if command == "report":
        if incomplete.startswith("-"):
            return "plain", [o for o in REPORT_OPTIONS if o.startswith(incomplete)]
        return "files", []
    config_name = "config"
    if command == "solve":
        if not rest:
            return "plain", [c for c in ("maxcut", "sdp") if c.startswith(incomplete)]
        if len(rest) == 1:
            return "files", []     # the problem file
        config_name, rest = "solve", [f"problem={rest[0]}", *rest[2:]]
    elif command != "train":
        return "plain", []
    if incomplete.startswith("-"):
        return "plain", [f for f in HYDRA_FLAGS if f.startswith(incomplete)]
    if rest and rest[-1] in ("--config-dir", "-cd", "--config-path", "-cp"):
        return "files", []
    found = complete_override(incomplete, rest, config_name)
    return ("nospace" if found and all(c.endswith("=") for c in found) else "plain"), found


def respond(environ: dict[str, str]) -> str:
    """The answer to one completion request: the mode line, then each candidate as the shell's current word
    (what follows the last of its word-break characters) should become."""
    line = environ.get("COMP_LINE", "")
    mode, found = candidates(line)
    breaks = set(environ.get("COMP_BREAKS", "=")) - set(" \t\n\"'")
    word = _words(line)[-1]
    cut = max((word.rfind(b) for b in breaks), default=-1) + 1
    return "\n".join([mode, *(c[cut:] for c in found if c[:cut] == word[:cut])]) + "\n"


def install(shell: str | None) -> str:
    """Add the eval line to the shell's startup file (once); returns what was done, for the user."""
    shell = shell or detect_shell()
    script(shell)  # refuses an unknown shell
    rc = os.path.expanduser(RC_FILES[shell])
    line = f'eval "$(alm-bench --show-completion {shell})"'
    text = open(rc).read() if os.path.exists(rc) else ""
    if line in text:
        return f"{shell} completion already set up in {rc}"
    with open(rc, "a") as f:
        f.write(("" if text.endswith("\n") or not text else "\n") + line + "\n")
    return f"{shell} completion added to {rc}; it takes effect in a new shell"
