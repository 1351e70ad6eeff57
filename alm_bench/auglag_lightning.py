"""The PyTorch Lightning callback for `AugLagLR` (Lightning is the optional extra `alm-bench[lightning]`).

Imported through `alm_bench.auglag.AugLagLRCallback` on first use, so the rest of the scheduler API
works without Lightning installed.
"""

from __future__ import annotations

from typing import Any, Iterable

try:
    from lightning.pytorch import Callback
except ImportError:
    try:
        from pytorch_lightning import Callback
    except ImportError:
        raise ImportError("AugLagLRCallback needs PyTorch Lightning: pip install 'alm-bench[lightning]' "
                          "(the rest of alm_bench.auglag works without it)") from None

from alm_bench.auglag import AugLagLossCalculator, AugLagLR


def _loss_calculator(pl_module: Any) -> AugLagLossCalculator:
    """causica's modules call it `auglag_loss`, GradientToolkit's `loss_calc`: accept either."""
    for name in ("auglag_loss", "loss_calc"):
        calc = getattr(pl_module, name, None)
        if isinstance(calc, AugLagLossCalculator):
            return calc
    raise AttributeError(f"{type(pl_module).__name__} has no AugLagLossCalculator attribute "
                         f"named 'auglag_loss' or 'loss_calc'")


class AugLagLRCallback(Callback):
    """After each training batch: step the scheduler with the batch output's `loss` and `constraint`.

    The training step must return a dict with those two keys. During `disabled_epochs` the scheduler
    is disabled (alpha = rho = 0); on convergence the trainer is asked to stop.
    """

    def __init__(self, scheduler: AugLagLR, log_auglag: bool = False, disabled_epochs: Iterable[int] | None = None):
        super().__init__()
        self.scheduler = scheduler
        self.log_auglag = log_auglag
        self.disabled_epochs = set(disabled_epochs or ())

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not isinstance(outputs, dict) or "loss" not in outputs or "constraint" not in outputs:
            raise ValueError("AugLagLRCallback: training_step must return a dict with 'loss' and 'constraint'")
        calc = _loss_calculator(pl_module)
        if trainer.current_epoch in self.disabled_epochs:
            self.scheduler.disable(calc)
            return
        self.scheduler.enable(calc)
        result = self.scheduler.step(optimizer=trainer.optimizers, loss=calc, loss_value=outputs["loss"],
                                     lagrangian_penalty=outputs["constraint"])
        converged, (inner, outer) = result
        pl_module.log_dict({"auglag_inner_reason": float(inner.value), "auglag_outer_reason": float(outer.value)},
                           on_step=True, on_epoch=False)
        if converged:
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not self.log_auglag:
            return
        calc = _loss_calculator(pl_module)
        s = self.scheduler
        pl_module.log_dict({"auglag_alpha": float(calc.alpha), "auglag_rho": float(calc.rho),
                            "auglag_outer_step": float(s.outer_step), "auglag_inner_step": float(s.inner_step),
                            "auglag_num_lr_updates": float(s.num_lr_updates)})


AuglagLRCallback = AugLagLRCallback  # causica's spelling
