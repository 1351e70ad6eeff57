"""Resume only what can be resumed: the run folder's composed config must match this run's, except for
fields that do not change the computation already done (the iteration, step or time budget, the
stopping tolerance of conic problems, logging, the device)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from alm_bench.checkpoint import last_path
from alm_bench.errors import UserError

MAY_CHANGE = ("resume", "logger", "device", "job_type", "sweep_metric", "problem.epochs", "problem.max_steps",
              "problem.log_every", "problem.checkpoint_every", "problem.eval_batch_size", "problem.root",
              "problem.download", "problem.tol", "controller.max_outer_iterations", "controller.max_iterations",
              "controller.time_limit_s")


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def _may_change(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in MAY_CHANGE)


def differing_keys(saved: dict, current: dict) -> list[tuple[str, Any, Any]]:
    a, b = _flat(saved), _flat(current)
    return [(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())
            if not _may_change(k) and a.get(k) != b.get(k)]


def check_resume(cfg: DictConfig, resume: Path, kind: str, controller: Any) -> None:
    if kind not in getattr(controller, "resumes", ()):   # which runs a solver can continue is its own attribute
        raise UserError(f"resume={resume}: {type(controller).__name__} keeps no checkpoint on {kind} problems, "
                        f"so its {kind} runs cannot be continued")
    saved_file = Path(resume) / ".hydra" / "config.yaml"
    if not saved_file.is_file():
        raise UserError(f"resume={resume}: not a run folder (no .hydra/config.yaml in it)")
    saved = OmegaConf.to_container(OmegaConf.load(saved_file), resolve=False)
    current = OmegaConf.to_container(cfg, resolve=False)
    differ = differing_keys(saved, current)
    if differ:
        shown = "; ".join(f"{k}: {old!r} there, {new!r} here" for k, old, new in differ[:6])
        more = f" (and {len(differ) - 6} more)" if len(differ) > 6 else ""
        raise UserError(f"resume={resume}: the run was made with a different config ({shown}{more}); "
                        f"only {', '.join(MAY_CHANGE[1:])} may change")
    if not last_path(resume).is_file():
        raise UserError(f"resume={resume}: no checkpoint at {last_path(resume)} (the run stopped before its "
                        f"first whole iteration, or was made before checkpoints existed)")
