"""The conic solvers, one module each with its config class beside its loop. A loop is a generator
`iterate(problem, controller, ctx, start=None)` of `ConicIterate`s that `alm_bench.conic.measure` measures the
same way for every solver; `start` is a checkpointed loop state to continue from.

    bala.py             BALA's config, state and update rules      bala_subproblem.py  its small QP (FISTA)
    bala_loop.py        BALA on an SDP (the spectral bundle)       bala_lp.py          BALA's LP variant
    burer_monteiro.py   classic ALM on the factor X = V V^T        mixing.py, scs.py   the baselines
    clarabel.py, csdp.py  the interior-point peers (Clarabel and the CSDP program, each in a child process)
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from alm_bench.conic.lp import BoxLP
from alm_bench.conic.solvers import bala_loop, bala_lp, burer_monteiro, clarabel, csdp, mixing, scs
from alm_bench.conic.solvers.bala import BALA
from alm_bench.controllers.classic_alm import ClassicALM
from alm_bench.errors import UserError

SDP_SOLVERS: dict[type, Callable[..., Iterator]] = {
    BALA: bala_loop.iterate, ClassicALM: burer_monteiro.iterate, mixing.MixingMethod: mixing.iterate,
    scs.SCSSolver: scs.iterate, clarabel.ClarabelSolver: clarabel.iterate, csdp.CSDPSolver: csdp.iterate}
LP_SOLVERS: dict[type, Callable[..., Iterator]] = {BALA: bala_lp.iterate}


def _lookup(table: dict[type, Callable], controller: Any) -> Callable | None:
    return next((table[cls] for cls in type(controller).__mro__ if cls in table), None)


def solver_loop(problem: Any, controller: Any) -> Callable[..., Iterator]:
    """The loop of `controller` on `problem` (chosen by class), or a one-line error naming both."""
    if isinstance(problem, BoxLP):
        loop = _lookup(LP_SOLVERS, controller)
        if loop is None:
            raise UserError(f"problem=lp is solved by controller=bala only (its LP variant), "
                            f"not by {type(controller).__name__}")
        return loop
    loop = _lookup(SDP_SOLVERS, controller)
    if loop is None:
        raise UserError(f"controller {type(controller).__name__} has no loop for conic problems")
    return loop
