"""Mixed precision for the training step: autocast for the forward pass, a GradScaler for fp16.

The constraint terms are part of the loss that is scaled, so after `unscale_` their gradient is the
fp32 one. (The published EMA-ALM reference added the penalty gradient to the already-scaled gradients
and lost it to the loss scale: its constraint never held.)
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    def __init__(self, name: str, device: torch.device) -> None:
        self.name, self.device_type, self.dtype = name, device.type, DTYPES[name]
        self.scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backpropagate the whole (augmented) loss; afterwards the gradients are unscaled, true fp32 values."""
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.step(optimizer)  # skipped by the scaler when an fp16 gradient overflowed
        self.scaler.update()
        optimizer.zero_grad(set_to_none=True)
