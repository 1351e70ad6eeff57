"""Budget-constrained image classification:  min_theta  CE(theta)  s.t.  g(theta) = log K(theta) - B <= 0.

The problem states what is trained and measured: data (CIFAR-10/100 or an offline synthetic set, the
train/validation split, augmentation), the network, the loss, the budget statistic, and the training
protocol every controller shares (AdamW settings, batch size, length, precision), so a paired-seed
comparison of controllers differs only in how the constraint is handled.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from alm_bench.errors import require, require_int, require_positive
from alm_bench.problems.budget import Budget, SpectralBudget
from alm_bench.problems.datasets import (CIFAR_STATS, ImageData, channel_stats, check_cifar_present, load_cifar,
                                         make_synthetic, split_train_val)
from alm_bench.problems.models import MODELS, build_model

DATASETS = ("cifar10", "cifar100", "synthetic")
PRECISIONS = ("fp32", "bf16", "fp16")


class BudgetClassifier:
    kind = "stochastic"

    def __init__(
        self,
        dataset: str = "cifar10",
        root: str = "data",
        download: bool = False,
        synthetic: dict[str, Any] | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 123,
        augment: bool = True,
        model: str = "resnet18",
        width: int = 32,
        budget: Budget | None = None,
        epochs: float = 60,
        max_steps: int | None = None,
        batch_size: int = 128,
        lr: float = 3e-4,
        weight_decay: float = 0.02,
        precision: str = "fp32",
        eval_batch_size: int = 500,
        log_every: int = 50,
        checkpoint_every: int = 0,
    ) -> None:
        require(dataset in DATASETS, "problem.dataset", f"one of {', '.join(DATASETS)}", dataset)
        require(model in MODELS, "problem.model", f"one of {', '.join(MODELS)}", model)
        require(precision in PRECISIONS, "problem.precision", f"one of {', '.join(PRECISIONS)}", precision)
        require(0 < val_fraction < 1, "problem.val_fraction", "in (0, 1)", val_fraction)
        require_positive("problem.epochs", epochs)
        require(max_steps is None or (isinstance(max_steps, int) and max_steps >= 1), "problem.max_steps",
                "null or an integer >= 1", max_steps)
        for field, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size),
                             ("log_every", log_every), ("width", width)):
            require_int(f"problem.{field}", value)
        require(isinstance(checkpoint_every, int) and checkpoint_every >= 0, "problem.checkpoint_every",
                "an integer >= 0 (0: at epoch ends only)", checkpoint_every)
        require_positive("problem.lr", lr)
        require(weight_decay >= 0, "problem.weight_decay", ">= 0", weight_decay)
        self.dataset, self.root, self.download = dataset, root, bool(download)
        self.synthetic = {"num_classes": 10, "train_size": 5000, "test_size": 1000, "image_size": 32,
                          "noise": 0.6, "seed": 0, **(synthetic or {})}
        self.val_fraction, self.split_seed, self.augment = val_fraction, split_seed, bool(augment)
        self.model_name, self.width = model, width
        self.budget = budget if budget is not None else SpectralBudget()
        self.epochs, self.max_steps, self.batch_size = epochs, max_steps, batch_size
        self.lr, self.weight_decay, self.precision = lr, weight_decay, precision
        self.eval_batch_size, self.log_every, self.checkpoint_every = eval_batch_size, log_every, checkpoint_every
        self.name = f"{dataset}-{model}-{self.budget.name}"
        if dataset != "synthetic" and not self.download:
            check_cifar_present(dataset, root)  # fail at build time, before any run folder work

    def load_data(self) -> ImageData:
        """Train/validation/test splits on the CPU; a missing dataset is a one-line UserError."""
        if self.dataset == "synthetic":
            s = self.synthetic
            full, test = make_synthetic(s["num_classes"], s["train_size"], s["test_size"], s["image_size"],
                                        s["noise"], s["seed"])
            num_classes = s["num_classes"]
        else:
            full, test, num_classes = load_cifar(self.dataset, self.root, self.download)
        train, val = split_train_val(full, self.val_fraction, self.split_seed)
        mean, std = CIFAR_STATS.get(self.dataset) or channel_stats(train.images)
        return ImageData(train, val, test, num_classes, mean, std)

    def build_model(self, num_classes: int) -> nn.Module:
        return build_model(self.model_name, num_classes, self.width)

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return nn.functional.cross_entropy(logits.float(), labels)

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        # One named group: AugLagLR resets learning rates by group name.
        return torch.optim.AdamW([{"params": list(model.parameters()), "name": "model"}], lr=self.lr,
                                 weight_decay=self.weight_decay)

    def total_steps(self, steps_per_epoch: int) -> int:
        return self.max_steps if self.max_steps is not None else max(1, math.ceil(self.epochs * steps_per_epoch))
