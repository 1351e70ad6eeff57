"""BALA, the bundle-based augmented Lagrangian method (Liao & Zheng 2025; seed 003), for conic problems.

Each iteration, from the center (x_k, y_k) and an inner set Omega_k of Omega:
    w = argmin_{Omega_k} L_rho(., y_k);  z = y_k + rho (b - A w);  v = argmin_Omega L(., z) (the oracle);
    descent if g(z) <= g(y_k) - beta (g(y_k) - g_k(z)), where g_k(z) = -L(w, z); else a null step.
For SDPs Omega_k = {eta W + P S P^T : eta >= 0, S PSD, eta + tr S <= gamma} (a spectral bundle). This module
holds the configuration, the state and the update rules (descent test, penalty streaks, bundle rank), each
testable on its own; the subproblem's numerics are in bala_subproblem.py, the loops in bala_loop.py (SDPs)
and bala_lp.py (LPs).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

from alm_bench.controllers.base import StateDictMixin
from alm_bench.errors import require, require_int, require_positive


# ---- pure rules ------------------------------------------------------------------------------------

def descent_test(g_z: float, g_y: float, g_model_z: float, beta: float) -> bool:
    """The proximal-bundle test: the true decrease is at least beta times the model's predicted decrease."""
    return g_z <= g_y - beta * (g_y - g_model_z)


def far_null(cut_error: float, model_error: float, predicted: float, ratio: float = 10.0) -> bool:
    """A null step counts towards lowering rho only when the model was far off: its new cut's linearization
    error at the center, or the model's error at the candidate (g(z) - g_k(z)), exceeds `ratio` times the
    predicted decrease (Kiwiel's proximity control, with the second test for a candidate thrown far: arch0's
    first steps, g(z) 600x the prediction). A nearly tight cut improves the model where it matters, and
    lowering rho then only slows the primal down: at an already optimal center (theta1) every step is null,
    and counting them all drove rho from 1e4 to 2e-5 while eps_p stalled at 1e-2."""
    return cut_error > ratio * predicted or model_error > ratio * predicted


def next_rho(rho: float, descent_streak: int, null_streak: int, *, rho0: float, up_after: int,
             down_after: int, factor: float, span: float, floor_span: float | None = None) -> tuple[float, bool]:
    """Adapt rho only on streaks: `up_after` descents in a row -> rho * factor (the model is good, take
    longer steps); `down_after` null steps in a row -> rho / factor. Kept in [rho0 / floor_span, rho0 * span]
    (floor_span defaults to span). Returns the new rho and whether it changed (the caller then resets its
    streak counters)."""
    floor_span = span if floor_span is None else floor_span
    new = rho
    if descent_streak >= up_after:
        new = rho * factor
    elif null_streak >= down_after:
        new = rho / factor
    new = min(max(new, rho0 / floor_span), rho0 * span)
    return new, new != rho


# ---- the controller ---------------------------------------------------------------------------------

# With whole blocks (bala_loop, controller.full_model) the model is g itself and every step is the proximal
# ALM step, which the proximal point theory lets rho grow without bound; those runs ended descent after descent
# at rho0 * rho_span. With 100x that cap (2026-12-05, 60 s caps, before EXACT_MODEL_UP_AFTER below): control3 to 1e-6 in 13 s instead of 34,
# control2 3.9 s instead of 5.0, control1 70 iterations instead of 81; control4 1.6e-6 instead of 5.2e-6, truss7
# 1.7e-6 instead of 6.3e-6, qap6 3.7e-5 instead of 5.2e-5, hinf1 4.6e-5 instead of 2.1e-4 at 30 s; truss1-4,
# qap5, qap7 unchanged.
EXACT_MODEL_SPAN = 100.0
# There descent is the rule (the model cannot be wrong, only the subproblem inexact), so rho doubles after every
# descent step, not every rho_up_after-th: control5 (blocks 50 + 25, whole after 7 steps) had crept to eps
# 1.9e-2 in 60 s as rho rose 2x every third 2-second step from a rho0 far too low. With this and the interior-
# point method's round-off stop (bala_interior.GAP_FLOOR), 60 s caps, 2026-12-05: control5 7.9e-6, control4 to
# 1e-6 in 26 s (3.4e-5 at 60 s), control3 21 -> 4.2 s, control1 2.5 -> 0.6 s, truss2 4.8 -> 1.3 s, truss7 to 1e-6
# in 17 s (1.7e-6 at 60 s), truss5 3.7e-5 -> 1.3e-6, qap7 1.1e-4 -> 1.2e-5; the low-rank runs are unchanged.
EXACT_MODEL_UP_AFTER = 1

@dataclass
class BALAState:
    rho: float = 0.0
    rho0: float = 0.0
    descent_streak: int = 0
    null_streak: int = 0
    descent_steps: int = 0
    null_steps: int = 0
    r_p: int = 0
    iteration: int = 0


# controller.r_c: null picks the oracle's new eigenvectors per iteration by the problem's class. A diag(X) = b
# problem on a sparse graph (on average at most SPARSE_DEGREE off-diagonal entries a row of C: toroidal grids,
# sparse random graphs) has a near-continuum at the bottom of its slack's spectrum, where more new vectors a step
# pay: G11 (degree 4) took 19 iterations to 1e-6 with 12 against 38 with 6. Denser graphs and general SDPs: 6.
SPARSE_DEGREE = 8
R_C_SPARSE, R_C_DEFAULT = 12, 6


def new_vectors(r_c: int | None, problem) -> int:
    """The oracle's new eigenvectors per iteration: controller.r_c, or the class rule above where it is null."""
    if r_c is not None:
        return r_c
    if problem.has_diagonal_constraints():
        c = problem.c_op.matrix
        off_diagonal = c.nnz - int((c.diagonal() != 0).sum())
        if off_diagonal <= SPARSE_DEGREE * problem.n:
            return R_C_SPARSE
    return R_C_DEFAULT


class BALA(StateDictMixin):
    accepts = ("conic",)
    resumes = ("conic",)

    def __init__(self, rho: float | None = None, rho_scale: float = 0.06, beta: float = 0.25,
                 r_p_min: int = 14, r_p_max: int = 40, r_c: int | None = None, kappa: float = 1.0,
                 max_iterations: int = 2000, subproblem_max_iter: int = 500,
                 eig_max_iter: int = 300, rho_up_after: int = 3, rho_down_after: int = 4,
                 rho_factor: float = 2.0, rho_span: float = 1e6, rho_floor_span: float = 10.0,
                 time_limit_s: float | None = None,
                 subproblem_interior: bool = True, warm_start: bool | str = "auto",
                 warm_start_factor: float = 10.0, warm_start_max_sweeps: int = 1000,
                 full_model: bool | str = "auto") -> None:
        if rho is not None:
            require_positive("controller.rho", rho)
        require_positive("controller.rho_scale", rho_scale)
        require(0 < beta < 1, "controller.beta", "in (0, 1)", beta)
        if r_c is not None:
            require_int("controller.r_c", r_c)
        for name, value in (("r_p_min", r_p_min), ("r_p_max", r_p_max),
                            ("max_iterations", max_iterations), ("subproblem_max_iter", subproblem_max_iter),
                            ("eig_max_iter", eig_max_iter), ("rho_up_after", rho_up_after),
                            ("rho_down_after", rho_down_after)):
            require_int(f"controller.{name}", value)
        require(r_p_max >= r_p_min, "controller.r_p_max", f">= r_p_min ({r_p_min})", r_p_max)
        require_positive("controller.kappa", kappa)
        require(rho_factor > 1, "controller.rho_factor", "> 1", rho_factor)
        require(rho_span >= 1, "controller.rho_span", ">= 1", rho_span)
        require(rho_floor_span >= 1, "controller.rho_floor_span", ">= 1", rho_floor_span)
        if time_limit_s is not None:
            require_positive("controller.time_limit_s", time_limit_s)
        require(warm_start in (True, False, "auto"), "controller.warm_start", "true, false or auto", warm_start)
        require(full_model in (True, False, "auto"), "controller.full_model", "true, false or auto", full_model)
        require_positive("controller.warm_start_factor", warm_start_factor)
        require_int("controller.warm_start_max_sweeps", warm_start_max_sweeps)
        self.warm_start, self.warm_start_factor = warm_start, warm_start_factor
        self.warm_start_max_sweeps = warm_start_max_sweeps
        self.rho_init, self.rho_scale, self.beta = rho, rho_scale, beta
        self.r_p_min, self.r_p_max, self.r_c, self.kappa = r_p_min, r_p_max, r_c, kappa
        self.max_iterations, self.subproblem_max_iter, self.eig_max_iter = max_iterations, subproblem_max_iter, eig_max_iter
        self.rho_up_after, self.rho_down_after = rho_up_after, rho_down_after
        self.rho_factor, self.rho_span, self.time_limit_s = rho_factor, rho_span, time_limit_s
        self.rho_floor_span = rho_floor_span
        self.subproblem_interior = bool(subproblem_interior)
        self.full_model = full_model
        self.state = BALAState(r_p=r_p_min)

    def warm_up(self) -> None:
        """Compile the primal phase's sweep (bala_warm.py) before the run's clock starts."""
        if self.warm_start is True or (self.warm_start == "auto" and importlib.util.find_spec("numba")):
            from alm_bench.conic.solvers.mixing import MixingMethod
            MixingMethod().warm_up()

    def start(self, c_norm: float, n: int, gamma: float | None = None) -> None:
        """rho0 = rho_scale |C|_F sqrt(n) / gamma unless rho is given: on Max-Cut (gamma = n) the scale that
        worked on the G-set, |C|_F / sqrt(n); the 1/gamma keeps it invariant when X and b are rescaled
        (y is unchanged and b - A(X) scales with X, so rho must scale inversely)."""
        gamma = float(n) if gamma is None else gamma
        rho0 = (self.rho_init if self.rho_init is not None
                else self.rho_scale * max(c_norm, 1e-12) * math.sqrt(n) / gamma)
        self.state = BALAState(rho=rho0, rho0=rho0, r_p=self.r_p_min)

    def record_step(self, descent: bool, far: bool = True, exact_model: bool = False) -> None:
        """Count the step, then the streak rule for rho; a null step that is not `far` (far_null) leaves the
        null streak as it is. With an `exact_model` (whole blocks) rho may rise EXACT_MODEL_SPAN times higher."""
        s = self.state
        s.iteration += 1
        if descent:
            s.descent_steps += 1
            s.descent_streak, s.null_streak = s.descent_streak + 1, 0
        else:
            s.null_steps += 1
            s.null_streak, s.descent_streak = s.null_streak + (1 if far else 0), 0
        s.rho, changed = next_rho(s.rho, s.descent_streak, s.null_streak, rho0=s.rho0,
                                  up_after=EXACT_MODEL_UP_AFTER if exact_model else self.rho_up_after,
                                  down_after=self.rho_down_after, factor=self.rho_factor,
                                  span=self.rho_span * (EXACT_MODEL_SPAN if exact_model else 1.0),
                                  floor_span=self.rho_floor_span)
        if changed:
            s.descent_streak = s.null_streak = 0

    def next_rank(self, rank_s: int, cap: int | None = None) -> int:
        """r_p <- max(r_p_min, rank(S) + 2), shrinking by at most 1 per iteration, at most `cap` (r_p_max unless
        given): r_p below rank(X*) + 1 stalls, and a bundle that shrinks fast forgets directions it needs again."""
        s = self.state
        s.r_p = min(self.r_p_max if cap is None else cap, max(self.r_p_min, rank_s + 2, s.r_p - 1))
        return s.r_p

    def metrics(self) -> dict[str, float]:
        return {"rho": self.state.rho, "r_p": self.state.r_p}
