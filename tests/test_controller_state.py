"""The one state protocol (controllers.base.StateDictMixin) and the choice of a conic solver's loop by class."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from alm_bench import checkpoint
from alm_bench.conic.lp import BoxLP
from alm_bench.conic.problems import MaxCut
from alm_bench.conic.solvers import bala_loop, bala_lp, burer_monteiro, mixing, scs, solver_loop
from alm_bench.conic.solvers.bala import BALA
from alm_bench.conic.solvers.mixing import MixingMethod
from alm_bench.conic.solvers.scs import SCSSolver
from alm_bench.controllers.auglag import AugLagController
from alm_bench.controllers.classic_alm import ClassicALM
from alm_bench.controllers.ema_alm import EMAALM
from alm_bench.controllers.training import ClassicALMInTraining
from alm_bench.controllers.unconstrained import Unconstrained
from alm_bench.errors import UserError

DATA = Path(__file__).parent / "data"


def test_classic_alm_state_round_trips_through_a_checkpoint_without_aliasing(tmp_path) -> None:
    alm = ClassicALM(rho=2.0)
    alm.start(torch.tensor(1.0), torch.zeros(2, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    alm.step(torch.tensor([0.5, -1.0], dtype=torch.float64), torch.tensor([0.25], dtype=torch.float64))
    saved = alm.state_dict()
    assert set(saved) == {"lam", "mu", "rho", "inner_tol", "previous_progress", "outer_step"}
    saved["lam"][0] = 99.0                                # a copy: the live multipliers are untouched
    assert float(alm.state.lam[0]) == pytest.approx(1.0)
    checkpoint.save(tmp_path / "c.pt", alm.state_dict())
    other = ClassicALM(rho=2.0)
    other.load_state_dict(checkpoint.load(tmp_path / "c.pt"))
    assert torch.equal(other.state.lam, torch.tensor([1.0, -2.0], dtype=torch.float64))
    assert torch.equal(other.state.mu, torch.tensor([0.5], dtype=torch.float64))
    assert (other.state.rho, other.state.outer_step, other.state.previous_progress) == (2.0, 1, 1.0)


def test_every_controller_and_solver_restores_what_it_saved() -> None:
    ema = EMAALM()
    for g in (0.3, 0.1, -0.2):
        ema.update(g, 1.0, None, epoch_end=False)
    bala = BALA()
    bala.start(10.0, 100)
    for descent in (True, True, False, True):
        bala.record_step(descent)
    mix = MixingMethod()
    mix.state.sweeps = 35
    in_training = ClassicALMInTraining(ClassicALM(rho=3.0, max_inner_steps=2))
    in_training.start(1.0, 0.5)
    for g in (0.5, 0.4, 0.3):
        in_training.update(g, 1.0, None, epoch_end=False)
    for live, fresh in ((ema, EMAALM()), (bala, BALA()), (mix, MixingMethod()),
                        (in_training, ClassicALMInTraining(ClassicALM(rho=3.0, max_inner_steps=2))),
                        (Unconstrained(), Unconstrained())):
        fresh.load_state_dict(live.state_dict())
        assert repr(fresh.state_dict()) == repr(live.state_dict()), type(live).__name__
    assert bala.state.descent_steps == 3 and math.isfinite(ema.state.g_ema) and mix.state.sweeps == 35
    assert in_training.state_dict()["steps_since_dual"] == 1 and in_training.state_dict()["alm"]["outer_step"] == 1
    assert Unconstrained().state_dict() == {}
    auglag = AugLagController()
    assert set(auglag.state_dict()) == {"loss", "scheduler"}


def test_a_conic_loop_is_chosen_by_class_and_resuming_is_the_solvers_own_attribute() -> None:
    graph = MaxCut(str(DATA / "G14.txt"))
    assert solver_loop(graph, BALA()) is bala_loop.iterate
    assert solver_loop(graph, ClassicALM()) is burer_monteiro.iterate
    assert solver_loop(graph, MixingMethod()) is mixing.iterate
    assert solver_loop(graph, SCSSolver()) is scs.iterate
    assert solver_loop(BoxLP(), BALA()) is bala_lp.iterate

    class TunedBALA(BALA):   # a user's subclass keeps its parent's loop (a class-name lookup lost it)
        pass

    assert solver_loop(graph, TunedBALA()) is bala_loop.iterate
    with pytest.raises(UserError, match="controller=bala only"):
        solver_loop(BoxLP(), MixingMethod())
    with pytest.raises(UserError, match="no loop for conic problems"):
        solver_loop(graph, EMAALM())
    assert "conic" not in SCSSolver.resumes and "smooth" not in AugLagController.resumes
    assert {"smooth", "stochastic", "conic"} <= set(ClassicALM.resumes) and "conic" in BALA.resumes
