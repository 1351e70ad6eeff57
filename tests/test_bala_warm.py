"""BALA's primal phase (conic/solvers/bala_warm.py): the split of the sweeps' factor into BALA's start, and
BALA's runs from it on diag(X) = b problems."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alm_bench.conic.problems import MaxCut, SDPAProblem
from alm_bench.conic.solvers.bala import BALA
from alm_bench.conic.solvers.bala_warm import primal_phase, warm_start_applies
from alm_bench.errors import ConfigError, UserError
from conftest import DATA, run_loop

G14_VALUE = 3191.5668   # the SDP value of the data README (4 decimals: 1.6e-8 relative)


def test_primal_phase_splits_the_factor_into_bundle_and_aggregate() -> None:
    problem = MaxCut(str(DATA / "G14.txt"))
    phase = primal_phase(problem, tol=1e-5, max_sweeps=1000, seed=0, max_bundle=20)
    v, c = phase.factor, problem.c_op.matrix
    np.testing.assert_allclose((v * v).sum(axis=1), problem.b_np, rtol=1e-12)          # diag(V V^T) = b
    np.testing.assert_allclose(phase.y, ((c @ v) * v).sum(axis=1) / problem.b_np, rtol=1e-10)
    assert phase.objective == pytest.approx(float(((c @ v) * v).sum()), rel=1e-12)
    k = phase.basis.shape[1]
    assert 1 <= k <= 20 and phase.sweeps < 1000
    np.testing.assert_allclose(phase.basis.T @ phase.basis, np.eye(k), atol=1e-12)
    # P diag(s) P^T + eta W = V V^T: the trace, diag and <C, .> add up
    x_bundle = (phase.basis * phase.s_values) @ phase.basis.T
    assert phase.s_values.sum() + phase.agg_weight == pytest.approx(problem.b_np.sum(), rel=1e-10)
    np.testing.assert_allclose(np.diag(x_bundle) + phase.agg_weight * phase.agg_a, problem.b_np, atol=1e-9)
    assert phase.agg_a.sum() == pytest.approx(1.0, rel=1e-10)
    assert float((c @ x_bundle).diagonal().sum()) + phase.agg_weight * phase.agg_c == pytest.approx(
        phase.objective, rel=1e-10)
    # the sweeps went about as far as asked: within 10x of 1e-5 of the SDP value (min <C, X> = -value)
    assert 0 <= -phase.objective <= G14_VALUE and G14_VALUE + phase.objective <= 1e-4 * G14_VALUE


def test_bala_from_the_primal_phase_solves_g14_to_1e6(tmp_path: Path) -> None:
    summary, rows = run_loop(MaxCut(str(DATA / "G14.txt"), tol=1e-6, rounding_trials=1), BALA(), tmp_path)
    assert summary["status"] == "converged", summary
    assert max(summary["eps_p"], summary["eps_d"], summary["eps_g"]) <= 1e-6
    assert abs(summary["sdp_bound"] - G14_VALUE) <= 2e-6 * G14_VALUE, summary["sdp_bound"]
    first = rows[0]
    assert first["step_type"] == "primal_phase" and first["primal_phase_sweeps"] > 0
    assert first["primal_phase_s"] <= first["wall_time_s"]
    assert all(r["step_type"] in ("descent", "null") for r in rows[1:])
    # BALA, not the sweeps, closed the gap: the phase's own row is far from the tolerance
    assert first["max_eps"] > 10 * 1e-6


@pytest.mark.slow
def test_the_primal_phase_saves_bala_iterations_on_g14(tmp_path: Path) -> None:
    """Measured: 12 BALA iterations after 78 sweeps against 44 from y0 = diag(C) (tol 1e-6)."""
    runs = {}
    for warm in (True, False):
        summary, rows = run_loop(MaxCut(str(DATA / "G14.txt"), tol=1e-6, rounding_trials=1), BALA(warm_start=warm),
                                 tmp_path / str(warm))
        assert summary["status"] == "converged", summary
        runs[warm] = sum(r["step_type"] != "primal_phase" for r in rows)
    assert 2 * runs[True] <= runs[False], runs


def test_warm_start_option() -> None:
    with pytest.raises(ConfigError, match="controller.warm_start"):
        BALA(warm_start="yes")
    with pytest.raises(ConfigError, match="controller.warm_start_factor"):
        BALA(warm_start_factor=0.0)
    theta1 = SDPAProblem(str(DATA / "theta1.dat-s"))
    assert not warm_start_applies("auto", theta1) and not warm_start_applies(False, theta1)
    with pytest.raises(UserError, match="controller.warm_start=true.*theta1"):
        warm_start_applies(True, theta1)
    assert warm_start_applies("auto", MaxCut(str(DATA / "G14.txt")))
