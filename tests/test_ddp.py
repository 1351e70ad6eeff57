"""DistributedDataParallel on CPU: two gloo processes train the classifier together and their controllers
stay identical (lambda, rho, the EMA: all driven by the all-reduced violation)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

pytestmark = pytest.mark.slow   # two gloo worker processes train the classifier

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from alm_bench.runners import distributed
    from alm_bench.controllers.ema_alm import EMAALM
    from conftest import tiny_problem, train

    controller = EMAALM(dual_every=2)
    summary, _ = train(tiny_problem(max_steps=24, batch_size=32, log_every=4), controller, Path(out) / f"rank{rank}")
    (Path(out) / f"rank{rank}.json").write_text(json.dumps({**summary, "state": controller.state_dict()}))
    dist.barrier()  # neither rank tears its gloo pair down while the other still uses it
    distributed.teardown()  # what atexit runs; a second call (atexit's, here) must be harmless
    assert not dist.is_initialized()
    distributed.teardown()


def test_two_gloo_processes_keep_identical_multipliers(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert results[0]["status"] in ("converged", "max_iterations") and results[0]["iterations"] == 24
    assert results[0]["state"]["dual_steps"] == 12 and results[0]["state"]["lam"] > 0
    for key in ("lambda", "rho", "g_ema", "g", "test_accuracy", "val_accuracy", "objective"):
        assert results[0][key] == results[1][key], key
    assert results[0]["state"] == results[1]["state"]
    # only rank 0 writes the trace and the checkpoints
    assert (tmp_path / "rank0" / "trace.csv").exists() and not (tmp_path / "rank1" / "trace.csv").exists()
    assert (tmp_path / "rank0" / "checkpoints" / "last.pt").exists()
