"""EMA-ALM step time against the plain AdamW step, measured side by side in one process.

Both steps are the training loop's own: AdamW on the cross-entropy, and AdamW on the augmented loss
with the spectral budget (one power iteration per layer, its gradient, the violation's all-reduce
and host read-back, the controller update). Blocks of steps of the two alternate, so drifts in machine
load hit both; the time per step is that of the fastest block (as timeit does: on a shared machine the
fastest block is the least disturbed one). Ratio = ALM / AdamW (target <= 1.10).
With a GPU it also reports ResNet-18 images/second at batch 512 with bf16 autocast, for both.
"""

from __future__ import annotations

import time

import torch

from alm_bench.controllers.ema_alm import EMAALM
from alm_bench.runners.distributed import Processes
from alm_bench.runners.precision import Precision
from alm_bench.problems.budget import SpectralBudget
from alm_bench.problems.models import build_model


class Trainer:
    """One model + optimizer + (for ALM) budget and controller; `step(x, y)` is one training step."""

    def __init__(self, model_name: str, device: torch.device, constrained: bool, precision: str) -> None:
        torch.manual_seed(0)
        self.model = build_model(model_name, 10, width=32).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=3e-4, weight_decay=0.02)
        self.precision = Precision(precision, device)
        self.procs = Processes(0, 1, device)
        self.constrained = constrained
        if constrained:
            self.budget = SpectralBudget(bound="absolute", value=-10.0)  # always violated: the penalty is active
            self.budget.attach(self.model)
            self.controller = EMAALM(lam_init=1.0)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with self.precision.autocast():
            f = torch.nn.functional.cross_entropy(self.model(x).float(), y)
        if self.constrained:
            g = self.budget.violation()
            f_mean, g_mean = self.procs.mean([f, g]).tolist()
            loss = self.controller.augmented_loss(f, g + (g_mean - g.detach()))
        else:
            loss = f
        self.precision.backward(loss, self.optimizer)
        self.precision.step(self.optimizer)
        if self.constrained:
            self.controller.update(g_mean, f_mean, self.optimizer, epoch_end=False)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def side_by_side(model_name: str, batch: int, device: torch.device, precision: str, blocks: int,
                 steps: int) -> tuple[float, float]:
    """Seconds per step of (AdamW, ALM): fastest of `blocks` alternating blocks of `steps` steps, after a warm-up."""
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    trainers = {"adamw": Trainer(model_name, device, False, precision), "alm": Trainer(model_name, device, True,
                                                                                        precision)}
    times: dict[str, list[float]] = {"adamw": [], "alm": []}
    for block in range(blocks + 1):
        for name in (("adamw", "alm") if block % 2 else ("alm", "adamw")):
            _sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                trainers[name].step(x, y)
            _sync(device)
            if block:  # block 0 warms caches and allocators up
                times[name].append((time.perf_counter() - start) / steps)
    return min(times["adamw"]), min(times["alm"])


def run(full: bool = False) -> str:
    threads = torch.get_num_threads()
    cases = [("small_cnn", 128, 9 if full else 5, 10), ("resnet18", 32, 9 if full else 5, 2)]
    lines = [f"CPU ({threads} threads), fp32:", "",
             "| model | batch | AdamW step (ms) | ALM step (ms) | ALM / AdamW |", "|---|---|---|---|---|"]
    cpu = torch.device("cpu")
    for model_name, batch, blocks, steps in cases:
        adamw, alm = side_by_side(model_name, batch, cpu, "fp32", blocks, steps)
        lines.append(f"| {model_name} | {batch} | {1e3 * adamw:.1f} | {1e3 * alm:.1f} | {alm / adamw:.3f} |")
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        adamw, alm = side_by_side("resnet18", 512, gpu, "bf16", 10 if full else 5, 10)
        lines += ["", f"GPU ({torch.cuda.get_device_name()}), ResNet-18, batch 512, bf16 autocast:", "",
                  "| | AdamW | ALM | ALM / AdamW |", "|---|---|---|---|",
                  f"| images/s | {512 / adamw:.0f} | {512 / alm:.0f} | {alm / adamw:.3f} (time) |"]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(run(full="--full" in sys.argv))
