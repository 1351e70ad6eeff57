"""DistributedDataParallel under torchrun: this process's rank, its device, and the one small all-reduce
per step that keeps every rank's controller fed with the same numbers."""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass
class Processes:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, values: list[Tensor | float]) -> Tensor:
        """The average over ranks of a few scalars, in float64 (one all-reduce; none for one process)."""
        packed = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=self.device).detach().reshape(())
                              for v in values])
        if self.world_size > 1:
            dist.all_reduce(packed)
            packed /= self.world_size
        return packed

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.world_size == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def setup(device: torch.device) -> Processes:
    """One process, or (under torchrun: WORLD_SIZE > 1) join the process group: NCCL on CUDA, else gloo."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Processes(0, 1, device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size)
        atexit.register(teardown)  # one group for every job of a multirun; NCCL warns if it is never destroyed
    return Processes(rank, world_size, device)


def teardown() -> None:
    """Destroy the process group at exit (if nothing else did): after a run's last collective no rank has
    work pending in it."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
