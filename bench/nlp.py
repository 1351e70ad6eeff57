"""Classic ALM against scipy.optimize.minimize (trust-constr, SLSQP) and IPOPT on the HS set and random QPs.

Every solver runs in this process on the same problem from the same x0, with exact derivatives from torch
autograd (IPOPT also the exact Hessian of its Lagrangian, as its documentation recommends, and its default
tolerance); times are medians of `repeats` runs; the ratio columns are the peer's time / alm-bench's time
(above 1: alm-bench is faster). IPOPT runs through cyipopt (pip install cyipopt-wheels here, where the cyipopt
source package cannot build without an IPOPT library); without it its column says so.
"""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np
import torch
from scipy.optimize import NonlinearConstraint, minimize

from alm_bench.controllers.classic_alm import ClassicALM
from alm_bench.problems.base import evaluate, relative_error
from alm_bench.problems.hock_schittkowski import HS, HockSchittkowski
from alm_bench.problems.quadratic import QuadraticProgram
from alm_bench.runners import RunContext
from alm_bench.runners.smooth import run as run_smooth
from alm_bench.tracking import Trackers


def problems(full: bool):
    yield from (HockSchittkowski(name) for name in HS)
    yield QuadraticProgram("random", dim=50, n_eq=10, n_ineq=20, instance_seed=0)
    if full:
        yield QuadraticProgram("random", dim=200, n_eq=40, n_ineq=80, condition=100.0, instance_seed=1)


def scipy_solve(problem, method: str):
    """scipy with exact gradients from torch autograd, the same x0 and constraints."""
    def f(x):
        return float(problem.objective(torch.as_tensor(x)))

    def grad(x):
        xt = torch.as_tensor(x).requires_grad_(True)
        return torch.autograd.grad(problem.objective(xt), xt)[0].numpy()

    def parts(kind):
        def fun(x):
            e = evaluate(problem, torch.as_tensor(x))
            return (e.eq if kind == "eq" else e.ineq).numpy()

        def jac(x):
            xt = torch.as_tensor(x)
            return torch.autograd.functional.jacobian(lambda z: evaluate(problem, z).eq if kind == "eq"
                                                      else evaluate(problem, z).ineq, xt).numpy()
        return fun, jac

    x0 = problem.initial_point().numpy()
    e0 = evaluate(problem, problem.initial_point())
    (heq, jeq), (hin, jin) = parts("eq"), parts("ineq")
    if method == "SLSQP":
        cons = ([{"type": "eq", "fun": heq, "jac": jeq}] if e0.eq.numel() else []) + \
               ([{"type": "ineq", "fun": lambda x: -hin(x), "jac": lambda x: -jin(x)}] if e0.ineq.numel() else [])
        options = {"ftol": 1e-12, "maxiter": 1000}
    else:
        cons = ([NonlinearConstraint(heq, 0, 0, jac=jeq)] if e0.eq.numel() else []) + \
               ([NonlinearConstraint(hin, -np.inf, 0, jac=jin)] if e0.ineq.numel() else [])
        options = {"gtol": 1e-9, "xtol": 1e-12, "maxiter": 5000}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = minimize(f, x0, jac=grad, method=method, constraints=cons, options=options)
    e = evaluate(problem, torch.as_tensor(result.x))
    violation = max([float(e.eq.abs().max())] if e.eq.numel() else [] + [0.0])
    if e.ineq.numel():
        violation = max(violation, float(e.ineq.clamp(min=0).max()))
    return float(result.fun), violation, int(result.nit)


def ipopt_solve(problem):
    """IPOPT (cyipopt's scipy-style interface) with the exact gradient, Jacobians and Lagrangian Hessian."""
    import cyipopt

    def tensor(x):
        return torch.as_tensor(np.asarray(x, dtype=np.float64))

    def f(x):
        return float(problem.objective(tensor(x)))

    def grad(x):
        xt = tensor(x).requires_grad_(True)
        return torch.autograd.grad(problem.objective(xt), xt)[0].numpy()

    def hess(x):
        return torch.autograd.functional.hessian(problem.objective, tensor(x)).numpy()

    def constraint(kind: str, sign: float) -> dict:
        def values(z):
            e = evaluate(problem, z)
            return sign * (e.eq if kind == "eq" else e.ineq)

        return {"type": kind, "fun": lambda x: values(tensor(x)).numpy(),
                "jac": lambda x: torch.autograd.functional.jacobian(values, tensor(x)).numpy(),
                "hess": lambda x, v: torch.autograd.functional.hessian(
                    lambda z: values(z) @ tensor(v), tensor(x)).numpy()}

    e0 = evaluate(problem, problem.initial_point())
    cons = ([constraint("eq", 1.0)] if e0.eq.numel() else []) + \
           ([constraint("ineq", -1.0)] if e0.ineq.numel() else [])   # scipy's convention: ineq means >= 0
    result = cyipopt.minimize_ipopt(f, problem.initial_point().numpy(), jac=grad, hess=hess, constraints=cons,
                                    options={"print_level": 0, "sb": "yes"})
    return float(result.fun), int(result.nit)


def alm_solve(problem):
    s = run_smooth(problem, ClassicALM(), Trackers([]), RunContext(output_dir=None, device=torch.device("cpu")))
    return s["objective"], s["max_violation"], s["iterations"]


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def run(full: bool = False) -> str:
    repeats = 5 if full else 3
    alm_solve(QuadraticProgram("toy"))  # warm torch up outside the clock
    try:
        import cyipopt  # noqa: F401
        has_ipopt = True
    except ImportError:
        has_ipopt = False
    lines = ["| problem | f* | alm-bench: time (s) / outer it. / rel. err / viol. | trust-constr: time / it. / rel. err "
             "| SLSQP: time / it. / rel. err | IPOPT: time / it. / rel. err | trust-constr ÷ ours | SLSQP ÷ ours "
             "| IPOPT ÷ ours |", "|---|---|---|---|---|---|---|---|---|"]
    for problem in problems(full):
        f_star = problem.reference()["objective"]
        rel = lambda f: relative_error(f, f_star)  # noqa: E731
        t_alm, (f_alm, v_alm, it_alm) = timed(lambda: alm_solve(problem), repeats)
        t_tc, (f_tc, _, it_tc) = timed(lambda: scipy_solve(problem, "trust-constr"), repeats)
        t_sl, (f_sl, _, it_sl) = timed(lambda: scipy_solve(problem, "SLSQP"), repeats)
        ipopt, ipopt_ratio = "not installed (pip install cyipopt-wheels)", "–"
        if has_ipopt:
            t_ip, (f_ip, it_ip) = timed(lambda: ipopt_solve(problem), repeats)
            ipopt, ipopt_ratio = f"{t_ip:.3f} / {it_ip} / {rel(f_ip):.1e}", f"{t_ip / t_alm:.2f}"
        lines.append(f"| {problem.name} | {f_star:.8g} | {t_alm:.3f} / {it_alm} / {rel(f_alm):.1e} / {v_alm:.0e} "
                     f"| {t_tc:.3f} / {it_tc} / {rel(f_tc):.1e} | {t_sl:.3f} / {it_sl} / {rel(f_sl):.1e} | {ipopt} "
                     f"| {t_tc / t_alm:.2f} | {t_sl / t_alm:.2f} | {ipopt_ratio} |")
    return "\n".join(lines)
