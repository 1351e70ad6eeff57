"""The experiment configs that reproduce the three seed scenarios compose, and the seed-000 one runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from alm_bench.task import run
from conftest import REPO, compose_config


def test_seed000_toy_under_auglag_matches_the_seed_test(tmp_path):
    cfg = compose_config("experiment=seed000_toy")
    summary = run(cfg, tmp_path, choices={"problem": "quadratic", "controller": "auglag"})
    # the seed's assertions: constraint < 1e-3 and x close to 3 (atol 0.1) ...
    assert summary["max_violation"] < 1e-3 and abs(summary["x"][0] - 3.0) <= 0.1
    # ... where the scheduler stops for causica's reasons; but x = 3.06 (objective 4% above 9) is not a KKT
    # point, so the run is `stopped`, not `converged`, and says why
    assert summary["status"] == "stopped" and summary["stationarity"] > 6
    assert "AugLagLR stopped at step 320 (MAX_INNER_STEPS_REACHED, PENALTY_TOLERANCE_REACHED)" in summary["message"]
    assert "stationarity 6.12 (tolerance 1e-06)" in summary["message"]


def sweep_params(experiment: str) -> dict:
    import alm_bench.task  # noqa: F401  (registers the run-folder resolver)

    with initialize_config_module(config_module="alm_bench.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    return cfg, dict(cfg.hydra.sweeper.params)


def test_seed001_compares_adamw_and_ema_alm_on_five_paired_seeds():
    cfg, params = sweep_params("seed001_cifar10")
    assert cfg.problem.dataset == "cifar10" and cfg.problem.model == "resnet18"
    assert params == {"controller": "unconstrained,ema_alm", "seed": "1,2,3,4,5"}


def test_seed003_sweeps_bala_classic_alm_mixing_and_scs_over_gset_graphs(monkeypatch):
    data = REPO.parent / "shared" / "data" / "gset_rudy"
    if not data.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    monkeypatch.chdir(REPO)
    cfg, params = sweep_params("seed003_maxcut")
    assert params["controller"] == "bala,classic_alm,mixing,scs"
    from omegaconf import OmegaConf

    paths = OmegaConf.create({"p": "${oc.env:ALM_BENCH_GSET,../shared/data/gset_rudy}"}).p
    assert all((Path(paths) / f"{g}.txt").is_file() for g in ("G1", "G14", "G43"))
    assert "G14.txt" in params["problem.path"] and cfg.job_type == "solve"
