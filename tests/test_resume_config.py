"""resume= refuses a run folder made with another config, naming the keys, before any work."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from alm_bench.errors import UserError
from alm_bench.task import run
from conftest import compose_config


def saved_run(tmp_path, *overrides):
    folder = tmp_path / "previous"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(compose_config(*overrides)))
    return folder


def test_a_changed_controller_setting_is_refused_by_name(tmp_path):
    previous = saved_run(tmp_path, "problem=synthetic", "controller=ema_alm")
    cfg = compose_config("problem=synthetic", "controller=ema_alm", "controller.alpha=9.0", "budget=weight_norm",
                         f"resume={previous}")
    with pytest.raises(UserError) as err:
        run(cfg, tmp_path / "new")
    message = str(err.value)
    assert "controller.alpha: 2.0 there, 9.0 here" in message and "problem.budget._target_" in message
    assert not (tmp_path / "new").exists()  # refused before any work


def test_a_longer_training_budget_may_change(tmp_path):
    from alm_bench.task.resume import differing_keys

    a = OmegaConf.to_container(compose_config("problem=synthetic", "controller=ema_alm", "problem.max_steps=12"))
    b = OmegaConf.to_container(compose_config("problem=synthetic", "controller=ema_alm", "problem.max_steps=24",
                                              "logger=wandb", "device=cpu", "resume=/x"))
    assert differing_keys(a, b) == []


def test_resume_from_a_run_folder_without_checkpoint_is_refused_before_any_work(tmp_path):
    previous = saved_run(tmp_path, "problem=hs")
    with pytest.raises(UserError, match=r"no checkpoint at .*checkpoints/last.pt"):
        run(compose_config("problem=hs", f"resume={previous}"), tmp_path / "new")
    assert not (tmp_path / "new").exists()
