"""Budget statistics: the power-iteration estimate, its gradient, the weight norm, relative bounds."""

from __future__ import annotations

import math

import pytest
import torch

from alm_bench.problems.budget import SpectralBudget, WeightNormBudget
from alm_bench.problems.models import small_cnn


def _exact_spectral_log_k(model) -> torch.Tensor:
    terms = []
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            w = m.weight.reshape(m.weight.shape[0], -1)
            terms.append(torch.log(torch.linalg.matrix_norm(w, ord=2)) - 0.5 * math.log(w.shape[1]))
    return torch.stack(terms).mean()


def test_power_iteration_matches_the_exact_top_singular_values():
    torch.manual_seed(0)
    model = small_cnn(10, width=8)
    budget = SpectralBudget(bound="absolute", value=0.0, initial_iterations=200)
    budget.attach(model)
    assert float(budget.log_k().detach()) == pytest.approx(float(_exact_spectral_log_k(model).detach()), abs=1e-4)


def test_spectral_gradient_matches_the_exact_one():
    torch.manual_seed(0)
    model = small_cnn(10, width=8)
    # The gradient u v^T / sigma is exact only once u, v have converged. The second conv layer has
    # sigma_2 / sigma_1 = 0.979, so after 200 iterations its vectors are still ~(0.979)^400 = 2e-4 off and
    # the gradient missed atol by 1.5e-5 on one machine; 1000 iterations reach float32 round-off.
    budget = SpectralBudget(bound="absolute", value=0.0, initial_iterations=1000)
    budget.attach(model)
    got = torch.autograd.grad(budget.log_k(), budget.weights)
    want = torch.autograd.grad(_exact_spectral_log_k(model), budget.weights)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-5)


def test_persistent_vectors_track_drifting_weights_with_one_iteration_per_step():
    torch.manual_seed(0)
    model = small_cnn(10, width=8)
    budget = SpectralBudget(bound="absolute", value=0.0)
    budget.attach(model)
    for _ in range(30):  # small random drift, as in training
        with torch.no_grad():
            for w in budget.weights:
                w.add_(0.01 * torch.randn_like(w))
        estimate = float(budget.log_k().detach())
    assert estimate == pytest.approx(float(_exact_spectral_log_k(model).detach()), abs=2e-2)
    assert estimate <= float(_exact_spectral_log_k(model).detach()) + 1e-6  # u^T W v never exceeds sigma_max


def test_weight_norm_statistic():
    lin = torch.nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    budget = WeightNormBudget(bound="absolute", value=0.0)
    budget.attach(torch.nn.Sequential(lin))
    assert float(budget.log_k().detach()) == pytest.approx(math.log(math.sqrt(12) / 2))


def test_relative_bound_is_warmup_median_plus_offset_and_survives_a_state_round_trip():
    budget = SpectralBudget(bound="relative", value=0.5)
    assert budget.B is None
    assert budget.set_bound_from([1.0, 3.0, 2.0]) == 2.5
    other = SpectralBudget(bound="relative", value=0.5)
    other.attach(small_cnn(10, width=8))
    budget.attach(small_cnn(10, width=8))
    other.load_state_dict(budget.state_dict())
    assert other.B == 2.5 and all(torch.equal(a, b) for a, b in zip(other.u, budget.u))


def test_statistic_is_fp32_inside_autocast():
    torch.manual_seed(0)
    model = small_cnn(10, width=8)
    budget = SpectralBudget(bound="absolute", value=0.0)
    budget.attach(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = budget.log_k()
    assert value.dtype == torch.float32
