"""The loop for stochastic problems (the budget-constrained classifier), under one process or torchrun.

Reads top to bottom: set up processes, data, model, budget, optimizer and controller; restore the
checkpoint when resuming (else fix the bound B); then per step: batch -> forward -> g -> one all-reduce
-> augmented loss -> backward -> AdamW -> controller update -> trace row; at each epoch end: validate,
keep the best model, checkpoint. Finally the test accuracy of the last and of the best model.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from alm_bench import checkpoint
from alm_bench.controllers.training import for_training
from alm_bench.errors import UserError
from alm_bench.problems.classifier import BudgetClassifier
from alm_bench.problems.datasets import BatchStream, ImageSet, eval_batches
from alm_bench.runners import RunContext, distributed
from alm_bench.runners.precision import Precision
from alm_bench.runners.signals import stop_signals
from alm_bench.runners.stopping import STOPS, Diverged, stop_for
from alm_bench.tracking.base import Trackers
from alm_bench.tracking.files import TRACE_FILE

NAN = math.nan


@dataclass
class Progress:
    """The loop's own counters; with the states of model, optimizer, controller and RNGs, a checkpoint."""

    step: int = 0
    started: bool = False                      # controller.start has run
    warmup_log_k: list[float] = field(default_factory=list)
    window: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # loss sum, correct, seen since last row
    g: float = NAN                             # the last measured violation
    val_loss: float = NAN
    val_accuracy: float = NAN
    best_val_accuracy: float = -1.0
    elapsed_s: float = 0.0


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageSet, problem: BudgetClassifier, precision: Precision,
             procs: distributed.Processes, mean: tuple, std: tuple) -> tuple[float, float]:
    """(mean loss, accuracy) on `data`, each rank taking its share."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=procs.device)
    for x, y in eval_batches(data, problem.eval_batch_size, mean, std, procs.rank, procs.world_size):
        with precision.autocast():
            logits = model(x)
        sums += torch.stack([problem.loss(logits, y).double() * len(y), (logits.argmax(1) == y).sum().double(),
                             torch.tensor(float(len(y)), dtype=torch.float64, device=procs.device)])
    model.train(was_training)
    loss_sum, correct, seen = procs.mean(list(sums)).tolist()
    return loss_sum / seen, correct / seen


def restore(ctx: RunContext, procs: distributed.Processes, model: nn.Module, optimizer: torch.optim.Optimizer,
            precision: Precision, ctrl: Any, budget: Any, problem_name: str) -> tuple[Progress, dict | None]:
    """Load every state of the run in ctx.resume; returns its progress and its best model's weights."""
    saved = checkpoint.load(checkpoint.last_path(ctx.resume))
    if saved["problem"] != problem_name:
        raise UserError(f"resume: {ctx.resume} trained problem {saved['problem']!r}, this run is {problem_name!r}")
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    precision.scaler.load_state_dict(saved["scaler"])
    ctrl.load_state_dict(saved["controller"])
    budget.load_state_dict(saved["budget"])
    checkpoint.set_rng_states(saved["rng"])
    best_state, best_file = None, checkpoint.best_path(ctx.resume)
    if best_file.is_file():
        best_state = checkpoint.load(best_file, "resume")
        if procs.is_main and best_file.resolve() != checkpoint.best_path(ctx.output_dir).resolve():
            checkpoint.best_path(ctx.output_dir).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(best_file, checkpoint.best_path(ctx.output_dir))
    return Progress(**saved["progress"]), best_state


def trace_row(step: int, p: Progress, steps_per_epoch: int, B: float | None, metrics: dict[str, float], lr: float,
              validated: bool) -> dict[str, float]:
    """One flat row; every row has every column (the trace's header comes from the first)."""
    return {"step": step, "epoch": step / steps_per_epoch, "loss": p.window[0] / p.window[2],
            "accuracy": p.window[1] / p.window[2], "logK": p.g + B if B is not None else NAN,
            "B": B if B is not None else NAN, "g": p.g, "g_ema": NAN, "lambda": NAN, "rho": NAN, **metrics, "lr": lr,
            "val_loss": p.val_loss if validated else NAN, "val_accuracy": p.val_accuracy if validated else NAN,
            "wall_time_s": p.elapsed_s}


def run(problem: BudgetClassifier, controller: Any, trackers: Trackers, ctx: RunContext) -> dict[str, Any]:
    procs = distributed.setup(ctx.device)
    ctrl = for_training(controller)
    data = problem.load_data().to(procs.device)
    model = problem.build_model(data.num_classes).to(procs.device)
    budget = problem.budget
    budget.attach(model, seed=ctx.seed)
    optimizer = problem.make_optimizer(model)
    precision = Precision(problem.precision, procs.device)
    stream = BatchStream(data.train, problem.batch_size, ctx.seed, problem.augment, data.mean, data.std,
                         procs.rank, procs.world_size)
    total = problem.total_steps(stream.steps_per_epoch)
    trackers.set_total_steps(total)
    warmup = round(budget.warmup_epochs * stream.steps_per_epoch) if budget.B is None else 0
    p, best_state = Progress(), None

    if ctx.resume is not None:
        p, best_state = restore(ctx, procs, model, optimizer, precision, ctrl, budget, problem.name)
        if procs.is_main:  # the trace goes on where the checkpoint was
            trackers.continue_trace(ctx.resume / TRACE_FILE, p.step)
    elif budget.B is None and warmup == 0:
        with torch.no_grad():
            budget.set_bound_from([float(budget.log_k())])

    def save_last() -> None:
        if procs.is_main:
            checkpoint.save(checkpoint.last_path(ctx.output_dir), {
                "problem": problem.name, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": precision.scaler.state_dict(), "controller": ctrl.state_dict(),
                "budget": budget.state_dict(), "rng": checkpoint.rng_states(), "progress": asdict(p)})

    train_model = procs.wrap(model)
    train_model.train()
    status, message, controller_converged = "max_iterations", "", False
    start = time.perf_counter() - p.elapsed_s
    with stop_signals(after_step=True) as interrupt:   # a signal lets the step in flight finish
        try:
            for step in range(p.step + 1, total + 1):
                x, y = stream.batch(step)
                with precision.autocast():
                    logits = train_model(x)
                    f = problem.loss(logits, y)
                constrained = ctrl.constrained and budget.B is not None
                g = budget.violation() if constrained else None  # fp32, inside the loss that is scaled
                f_mean, g_mean, correct, seen, stop = procs.mean([  # one all-reduce for all of them
                    f, NAN if g is None else g, (logits.argmax(1) == y).sum(), len(y), interrupt.requested]).tolist()
                if not math.isfinite(f_mean) or (constrained and not math.isfinite(g_mean)):
                    raise Diverged(f"{'loss' if not math.isfinite(f_mean) else 'constraint g'} is "
                                   f"{f_mean if not math.isfinite(f_mean) else g_mean} at step {step}")
                if constrained:
                    g = g + (g_mean - g.detach())  # every rank's coefficients see the same g; grad stays dg
                    if not p.started:
                        ctrl.start(float(f_mean), float(g_mean))
                        p.started = True
                precision.backward(ctrl.augmented_loss(f, g) if constrained else f, optimizer)
                precision.step(optimizer)
                epoch_end = stream.is_epoch_end(step)
                if constrained:
                    p.g = float(g_mean)
                    controller_converged = ctrl.update(p.g, float(f_mean), optimizer, epoch_end)
                if budget.B is None:  # relative bound: measure log K through the warm-up, then fix B
                    with torch.no_grad():
                        p.warmup_log_k.append(float(budget.log_k()))
                    if step >= warmup:
                        budget.set_bound_from(p.warmup_log_k)
                p.window = [p.window[0] + float(f_mean) * float(seen), p.window[1] + float(correct),
                            p.window[2] + float(seen)]
                p.step = step
                if epoch_end:
                    p.val_loss, p.val_accuracy = evaluate(model, data.val, problem, precision, procs, data.mean,
                                                          data.std)
                    if p.val_accuracy > p.best_val_accuracy:
                        p.best_val_accuracy = p.val_accuracy
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                        if procs.is_main:
                            checkpoint.save(checkpoint.best_path(ctx.output_dir), best_state)
                last = step == total or controller_converged
                # No extra row at a Ctrl-C stop: the window sums go into the checkpoint, so the resumed
                # trace has exactly the rows (and values) of an uninterrupted run.
                if step % problem.log_every == 0 or epoch_end or last:
                    if not constrained and budget.B is not None:  # the baseline measures g for the trace only
                        with torch.no_grad():
                            p.g = float(budget.violation())
                    p.elapsed_s = time.perf_counter() - start
                    if procs.is_main:
                        trackers.log(trace_row(step, p, stream.steps_per_epoch, budget.B, ctrl.metrics(),
                                               optimizer.param_groups[0]["lr"], epoch_end))
                    p.window = [0.0, 0.0, 0.0]
                every = problem.checkpoint_every
                if epoch_end or last or stop > 0 or (every and step % every == 0):
                    p.elapsed_s = time.perf_counter() - start
                    save_last()
                if controller_converged:   # judged below by the budget at the end, like a finished run
                    reasons = getattr(ctrl, "stop_reasons", lambda: "")()
                    status = "stopped"
                    message = f"the controller stopped the run at step {step}" + (f" ({reasons})" if reasons else "")
                    break
                if stop > 0:
                    done = stop_for(f"{interrupt.signal_name or 'a signal on another rank'} at step {step}",
                                    ctx.output_dir)
                    status, message = done.status, done.message
                    break
        except STOPS as err:   # a second signal cut the step short: resume= goes on from the last checkpoint
            done = stop_for(err, ctx.output_dir)
            status, message = done.status, done.message

    summary: dict[str, Any] = {"status": status, "message": message, "iterations": p.step,
                               "epochs": p.step / stream.steps_per_epoch,
                               "wall_time_s": time.perf_counter() - start}
    if status in ("diverged", "interrupted"):
        summary.update(objective=NAN, max_violation=NAN if math.isnan(p.g) else max(p.g, 0.0), g=p.g,
                       **ctrl.metrics())
        return summary
    with torch.no_grad():
        g_final = float(budget.violation()) if budget.B is not None else NAN
    val_loss, val_accuracy = evaluate(model, data.val, problem, precision, procs, data.mean, data.std)
    _, test_accuracy = evaluate(model, data.test, problem, precision, procs, data.mean, data.std)
    if best_state is not None:
        model.load_state_dict(best_state)
        _, test_at_best = evaluate(model, data.test, problem, precision, procs, data.mean, data.std)
    else:
        test_at_best = NAN
    done = message or f"trained {p.step} steps"
    if status in ("max_iterations", "stopped") and g_final <= 0:   # training's tolerance: the budget holds
        status, message = "converged", f"{done}; the budget holds at the end (g = {g_final:+.4g})"
    elif status in ("max_iterations", "stopped"):
        message = f"{done}; the budget is violated at the end (g = {g_final:+.4g} > 0)"
    summary.update(status=status, message=message, objective=val_loss, max_violation=max(g_final, 0.0),
                   test_accuracy=test_accuracy, test_accuracy_at_best_val=test_at_best,
                   val_loss=val_loss, val_accuracy=val_accuracy, best_val_accuracy=p.best_val_accuracy, g=g_final,
                   logK=g_final + budget.B if budget.B is not None else NAN, B=budget.B,
                   **{"g_ema": NAN, "lambda": NAN, "rho": NAN, **ctrl.metrics()})
    return summary
