"""The device=cuda paths on a real GPU: BALA and Burer-Monteiro ALM on CUDA tensors reach the certified values
that the CPU runs reach, the CSR products agree with scipy, a bf16-autocast training run learns and keeps its
penalty's gradient, the command line runs with device=cuda, and (with two GPUs) NCCL keeps the ranks' duals
identical. Marked cuda: skipped with the reason where torch sees no GPU (CI); bench/gpu_check.sh runs them."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from alm_bench.conic.kernels import torch_kernels
from alm_bench.conic.problems import MaxCut, SDPAProblem
from alm_bench.conic.solvers.bala import BALA
from alm_bench.controllers.classic_alm import ClassicALM
from conftest import DATA, read_summary, run_cli, run_loop, tiny_problem, train

pytestmark = pytest.mark.cuda
# bench/gpu_check.sh --dry-run runs these same tests on the CPU (=cpu) to check them and itself without a GPU.
DEVICE = os.environ.get("ALM_BENCH_CUDA_TESTS_DEVICE", "cuda")

G14_VALUE, MCP100_VALUE = 3191.5668, 226.157351


def certified_near(bound: float, value: float, tol: float) -> bool:
    """A certified bound is an upper bound on the (maximisation) optimum, and at eps <= tol within ~2 tol of it
    (eps_g is relative to 1 + |primal| + |dual|); the values are printed to 1e-4 and 1e-6."""
    return value - 1e-4 <= bound <= value * (1 + 2.2 * tol)


@pytest.mark.parametrize("controller", [BALA, ClassicALM])
def test_maxcut_on_the_gpu_reaches_the_certified_value(tmp_path: Path, controller) -> None:
    summary, rows = run_loop(MaxCut(str(DATA / "G14.txt"), tol=5e-4, rounding_trials=4), controller(), tmp_path,
                             device=DEVICE)
    assert summary["status"] == "converged", summary
    assert certified_near(summary["sdp_bound"], G14_VALUE, 5e-4)
    assert 0.878 * summary["sdp_bound"] <= summary["cut_value"] <= summary["sdp_bound"]


def test_bala_on_an_sdpa_file_on_the_gpu(tmp_path: Path) -> None:
    summary, _ = run_loop(SDPAProblem(str(DATA / "mcp100.dat-s"), tol=5e-4), BALA(), tmp_path, device=DEVICE)
    assert summary["status"] == "converged" and certified_near(summary["sdp_bound"], MCP100_VALUE, 5e-4)


def test_cuda_csr_products_match_scipy() -> None:
    p = MaxCut(graph="random:n=5000,degree=8,seed=0")
    v = np.random.default_rng(0).standard_normal((p.n, 7))
    y = torch.linspace(-1.0, 1.0, p.n, dtype=torch.float64)
    expected_c, expected_slack = p.c_op.matrix @ v, p.slack(y).scipy() @ v
    p.to(torch.device(DEVICE))
    v_gpu = torch.as_tensor(v, device=DEVICE)
    with torch_kernels():   # on a GPU the torch branch anyway; on the CPU (dry run) made to take it
        got_c, got_slack = p.c_mm(v_gpu), p.slack(y.to(DEVICE)).mm(v_gpu)
    assert got_c.device.type == DEVICE
    assert np.allclose(got_c.cpu().numpy(), expected_c, atol=1e-12)
    assert np.allclose(got_slack.cpu().numpy(), expected_slack, atol=1e-12)


@pytest.mark.slow   # trains
def test_bf16_training_on_the_gpu_learns_and_keeps_the_penalty(tmp_path: Path) -> None:
    from alm_bench.controllers.ema_alm import EMAALM

    summary, rows = train(tiny_problem(max_steps=60, precision="bf16"), EMAALM(), tmp_path, device=DEVICE)
    assert summary["status"] in ("converged", "max_iterations")
    assert summary["test_accuracy"] > 0.2   # chance is 0.1
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert float(rows[-1]["lambda"]) > 0     # the spectral budget is active: the dual grew


def test_the_penalty_gradient_under_bf16_autocast_is_the_fp32_one() -> None:
    """The lesson of the published EMA-ALM reference: the constraint's gradient must survive mixed precision."""
    from alm_bench.problems.budget import SpectralBudget
    from alm_bench.problems.models import build_model
    from alm_bench.runners.precision import Precision

    grads = {}
    for name in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = build_model("small_cnn", 10, width=8).to(DEVICE)
        budget = SpectralBudget(bound="absolute", value=0.0)
        budget.attach(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        precision = Precision(name, torch.device("cuda"))
        with precision.autocast():
            model(torch.randn(4, 3, 16, 16, device=DEVICE))
        precision.backward(10.0 * budget.violation(), optimizer)
        grads[name] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert torch.allclose(grads["bf16"], grads["fp32"], rtol=1e-5, atol=1e-7)


@pytest.mark.slow   # a subprocess
def test_solve_with_device_cuda_from_the_command_line(outputs: Path) -> None:
    result = run_cli("solve", "maxcut", str(DATA / "G14.txt"), f"device={DEVICE}", "problem.tol=5e-4",
                     "problem.rounding_trials=2")
    assert result.returncode == 0, result.stderr
    summary = read_summary(next((outputs / "runs").rglob("summary.json")).parent)
    assert summary["status"] == "converged" and summary["device"].startswith(DEVICE)
    assert certified_near(summary["sdp_bound"], G14_VALUE, 5e-4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nccl_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    import torch.distributed as dist

    from alm_bench.controllers.ema_alm import EMAALM
    from alm_bench.runners import distributed
    from alm_bench.runners import RunContext, loop_for
    from alm_bench.tracking import MemoryTracker, RunInfo, Trackers

    problem, controller = tiny_problem(max_steps=24, log_every=4), EMAALM(dual_every=2)
    trackers = Trackers([MemoryTracker()])
    trackers.start(RunInfo(output_dir=None, name="nccl"))
    summary = loop_for(problem, controller)(problem, controller, trackers, RunContext(
        output_dir=Path(out) / f"rank{rank}", device=torch.device("cuda"), seed=0))
    assert dist.get_backend() == "nccl"
    (Path(out) / f"rank{rank}.json").write_text(json.dumps({"lambda": summary.get("lambda"),
                                                            "state": controller.state_dict()}))
    dist.barrier()
    distributed.teardown()


@pytest.mark.slow   # two worker processes
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL across processes needs two GPUs")
def test_two_nccl_processes_keep_identical_duals(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_nccl_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["state"]["dual_steps"] == 12 and ranks[0]["state"]["lam"] > 0
    assert ranks[0] == ranks[1]
