"""Find run folders (a run, a sweep, or any folder above them) and read what each left behind."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alm_bench.errors import UserError
from alm_bench.tracking.files import SUMMARY_FILE, TRACE_FILE


@dataclass
class Run:
    path: Path
    summary: dict[str, Any]
    overrides: dict[str, str] = field(default_factory=dict)   # the command line's key=value pairs
    choices: dict[str, str] = field(default_factory=dict)     # config group -> option
    trace: list[dict[str, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)      # the composed config, flat ("problem.tol": 1e-5)

    @property
    def problem(self) -> tuple[str, str]:
        """What this run solved: the problem's own name (hs071, quadratic-random-50, G14, ...) and its known
        optimum where it has one (two random QPs of one size differ there)."""
        name = str(self.summary.get("problem") or self.choices.get("problem") or "?")
        reference = self.summary.get("reference_objective")
        return name, "" if reference is None else repr(reference)

    @property
    def label(self) -> str:
        """All of this run's overrides, e.g. 'problem=hs controller=ema_alm seed=2'."""
        return self.label_for(list(self.overrides))

    def label_for(self, keys: list[str]) -> str:
        shown = [f"{k}={self.overrides[k]}" for k in keys if k in self.overrides and not k.startswith("hydra")]
        return " ".join(shown) or self.path.name

    def value(self, key: str) -> str | None:
        """An axis value (controller, seed, problem.name, ...) from overrides, then group choices, then summary."""
        for source in (self.overrides, self.choices):
            if key in source:
                return str(source[key])
        v = self.summary.get(key)
        return None if v is None else str(v)

    def metric(self, key: str) -> float:
        v = self.summary.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            try:
                return float(v)  # "nan" / "inf" as written to JSON
            except (TypeError, ValueError):
                return math.nan
        return float(v)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_trace(path: Path) -> list[dict[str, float]]:
    """Rows of trace.csv as numbers; a row cut off by a killed run (too few fields) is dropped."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return [{k: _number(v) for k, v in row.items()} for row in reader
                if None not in row.values() and None not in row]


def read_run(path: Path) -> Run:
    try:
        summary = json.loads((path / SUMMARY_FILE).read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path / 'summary.json'}: not valid JSON ({err.msg} at line {err.lineno})") from None
    overrides, choices = {}, {}
    hydra_dir = path / ".hydra"
    if (hydra_dir / "overrides.yaml").exists():
        for item in yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) or []:
            key, _, value = str(item).partition("=")
            overrides[key.lstrip("+~")] = value
    if (hydra_dir / "hydra.yaml").exists():
        hydra_cfg = yaml.safe_load((hydra_dir / "hydra.yaml").read_text()) or {}
        choices = {k: str(v) for k, v in (hydra_cfg.get("hydra", {}).get("runtime", {}).get("choices") or {}).items()
                   if not k.startswith("hydra/")}
    config = flatten(yaml.safe_load((hydra_dir / "config.yaml").read_text()) or {}) \
        if (hydra_dir / "config.yaml").exists() else {}
    trace = read_trace(path / TRACE_FILE)
    if summary.get("status") == "running" and trace:
        # killed (or still running): its last complete trace row is the best summary there is
        summary = {**trace[-1], **summary, "iterations": int(trace[-1].get("step", len(trace)))}
    return Run(path=path, summary=summary, overrides=overrides, choices=choices, trace=trace, config=config)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as one level of dotted keys: {"problem": {"tol": 1e-5}} -> {"problem.tol": 1e-5}."""
    if not isinstance(node, dict) or not node:
        return {prefix[:-1]: node} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


def find_runs(paths: list[Path]) -> list[Run]:
    """Every run folder (one holding summary.json) at or below each path, in a stable order."""
    runs: list[Run] = []
    for path in map(Path, paths):
        if not path.exists():
            raise UserError(f"{path}: no such file or folder")
        if not path.is_dir():
            raise UserError(f"{path}: expected a run folder or a sweep folder, got a file")
        found = sorted({p.parent for p in path.rglob(SUMMARY_FILE)},
                       key=lambda p: [int(s) if s.isdigit() else s for s in p.relative_to(path).parts])
        if not found:
            raise UserError(f"{path}: no runs found (no summary.json in it or below it)")
        runs.extend(read_run(p) for p in found)
    return runs


def varying_keys(runs: list[Run]) -> list[str]:
    """The overrides whose value is not the same in every run (what tells the runs apart)."""
    keys = dict.fromkeys(k for r in runs for k in r.overrides)
    return [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]


def check_same_problem(runs: list[Run]) -> None:
    kinds: dict[str, int] = {}
    for run in runs:
        kind = run.choices.get("problem") or str(run.summary.get("problem", "?"))
        kinds[kind] = kinds.get(kind, 0) + 1
    if len(kinds) > 1:
        counts = ", ".join(f"problem={k}: {n} run{'s' if n > 1 else ''}" for k, n in sorted(kinds.items()))
        raise UserError(f"these runs solve different problems ({counts}); report each problem separately")
