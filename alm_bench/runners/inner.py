"""Inner minimisation of L_rho(., lam, mu) for smooth problems.

The configured torch optimizer (L-BFGS with strong-Wolfe line search by default) does the work.
A function-value line search cannot push |grad| below about sqrt(2 H eps |L|) (H the curvature,
eps the float64 unit round-off): on ill-conditioned L_rho it stalls at 1e-6..1e-3. For small
problems a few Newton steps, accepted on the gradient norm rather than on function values,
then finish the solve to the requested tolerance.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from alm_bench.runners.stopping import Diverged

NEWTON_MAX_DIM = 500  # dense Hessians beyond this cost more than they save


def _gradient(loss_fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        xd = x.detach().requires_grad_(True)
        loss = loss_fn(xd)
        (grad,) = torch.autograd.grad(loss, xd)
    return loss.detach(), grad


def newton_polish(loss_fn: Callable[[Tensor], Tensor], x: Tensor, tol: float, max_steps: int = 20) -> int:
    """Damped Newton steps on loss_fn from x (updated in place) until |grad|_inf <= tol.

    A step is accepted on Armijo's test; once the loss changes only at round-off level (where Armijo cannot
    judge), on a smaller gradient norm instead. Returns the number of evaluations (gradient or Hessian)."""
    evaluations = 0
    loss, grad = _gradient(loss_fn, x)
    eye = torch.eye(len(x), dtype=x.dtype, device=x.device)
    for _ in range(max_steps):
        if grad.abs().max() <= tol:
            break
        hessian = torch.autograd.functional.hessian(loss_fn, x.detach())
        evaluations += 1
        hessian = 0.5 * (hessian + hessian.T)
        shift, scale = 0.0, float(hessian.diagonal().abs().max()) or 1.0
        for _ in range(60):  # the smallest shift that makes H + shift I positive definite
            chol, info = torch.linalg.cholesky_ex(hessian + shift * eye)
            if info == 0:
                break
            shift = max(2 * shift, 1e-12 * scale)
        direction = torch.cholesky_solve(-grad.unsqueeze(1), chol).squeeze(1)
        slope = float(grad @ direction)  # < 0: a descent direction
        roundoff = 1e-13 * max(1.0, abs(float(loss)))
        step, accepted = 1.0, False
        for _ in range(40):
            trial_loss, trial_grad = _gradient(loss_fn, x.detach() + step * direction)
            evaluations += 1
            change = float(trial_loss - loss)
            if torch.isfinite(trial_grad).all() and (
                    change <= 1e-4 * step * slope
                    or (abs(change) <= roundoff and trial_grad.norm() < grad.norm())):
                accepted = True
                break
            step *= 0.5
        if not accepted:
            break
        with torch.no_grad():
            x.add_(step * direction)
        loss, grad = trial_loss, trial_grad
    return evaluations


def minimize(loss_fn: Callable[[Tensor], Tensor], x: Tensor, optimizer: torch.optim.Optimizer,
             tol: float, max_evaluations: int, newton: bool = True) -> int:
    """Minimise loss_fn from x (a leaf tensor, updated in place) until |grad|_inf <= tol.
    Returns the number of evaluations. Raises Diverged if the loss or gradient becomes NaN/Inf."""
    evaluations = 0

    def closure() -> Tensor:
        nonlocal evaluations
        evaluations += 1
        optimizer.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        return loss

    lbfgs = isinstance(optimizer, torch.optim.LBFGS)
    while True:
        loss = closure()
        if not torch.isfinite(loss) or not torch.isfinite(x.grad).all():
            raise Diverged("the augmented Lagrangian became NaN/Inf in the inner loop")
        if x.grad.abs().max() <= tol or evaluations >= max_evaluations:
            return evaluations
        if not lbfgs:
            optimizer.step()
            continue
        optimizer.step(closure)  # up to max_iter L-BFGS iterations; returns early at tol
        if newton and x.numel() <= NEWTON_MAX_DIM:
            _, grad = _gradient(loss_fn, x)
            if grad.abs().max() > tol:
                evaluations += newton_polish(loss_fn, x, tol)
            return evaluations + 1
        with torch.no_grad():
            if float(loss_fn(x)) >= float(loss) - 1e-15 * abs(float(loss)):
                return evaluations  # stalled at round-off level; more calls would only creep
