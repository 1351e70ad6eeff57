"""Max-Cut and SDPA solves reach the certified values of ../shared/data/README.md, for BALA and for
classic ALM on the Burer-Monteiro factor; the rules of BALA; rounding; the LP toy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from alm_bench.conic.solvers.bala import BALA, descent_test, next_rho
from alm_bench.conic.solvers.bala_subproblem import capped_simplex_projection
from alm_bench.conic.solvers.mixing import MixingMethod
from alm_bench.conic.solvers.scs import SCSSolver
from alm_bench.controllers.classic_alm import ClassicALM
from alm_bench.errors import UserError
from alm_bench.conic.kernels import numpy_path, torch_kernels
from alm_bench import checkpoint
from alm_bench.conic.eigen import certified_lambda_min
from alm_bench.conic.lp import BoxLP
from alm_bench.conic.problems import MaxCut, SDPAProblem
from alm_bench.conic.rounding import goemans_williamson
from conftest import DATA, run_loop

SDP_VALUE = {"G14": 3191.5668, "G11": 629.1647, "mcp100": 226.157351, "theta1": 23.0}


def check_solution(summary: dict, name: str, tol: float) -> None:
    assert summary["status"] == "converged", summary
    assert max(summary["eps_p"], summary["eps_d"], summary["eps_g"]) <= tol
    assert abs(summary["sdp_bound"] - SDP_VALUE[name]) <= 1e-4 * SDP_VALUE[name], summary["sdp_bound"]


# ---- pure rules ---------------------------------------------------------------------------------------

def test_rank_rule_keeps_the_bound_while_the_copies_fit() -> None:
    from alm_bench.conic.problems import FACTOR_MEMORY, MIN_RANK, factor_rank

    assert [factor_rank(n, n) for n in (800, 2000, 7000, 100_000)] == [41, 65, 120, 449]   # ceil(sqrt(2n)) + 1
    assert factor_rank(10**6, 10**6) == 67 and factor_rank(10**5, 10**5, copies=28) == 191   # L-BFGS, 10 pairs
    assert factor_rank(10**8, 10**8) == MIN_RANK and factor_rank(3, 3) == 3   # the floor; never above n
    for n, copies in ((150_000, 8), (10**6, 8), (60_000, 28), (10**6, 12)):
        r = factor_rank(n, n, copies)
        assert r == MIN_RANK or 8 * n * r * copies <= FACTOR_MEMORY < 8 * n * (r + 1) * copies


def test_capped_simplex_projection_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        v = torch.as_tensor(rng.normal(size=6) * 3)
        p = capped_simplex_projection(v, 2.0)
        assert float(p.min()) >= 0 and float(p.sum()) <= 2.0 + 1e-12
        # optimality: v - p is a normal of the set at p (check against random feasible points)
        for _ in range(20):
            u = torch.as_tensor(rng.dirichlet(np.ones(6)) * rng.uniform(0, 2))
            assert float((v - p) @ (u - p)) <= 1e-10


def test_descent_test_and_rho_streaks() -> None:
    assert descent_test(g_z=9.0, g_y=10.0, g_model_z=8.0, beta=0.25)       # 1 >= 0.25 * 2
    assert not descent_test(g_z=9.9, g_y=10.0, g_model_z=8.0, beta=0.25)
    assert next_rho(1.0, 3, 0, rho0=1.0, up_after=3, down_after=4, factor=2, span=10) == (2.0, True)
    assert next_rho(1.0, 0, 4, rho0=1.0, up_after=3, down_after=4, factor=2, span=10) == (0.5, True)
    assert next_rho(10.0, 3, 0, rho0=1.0, up_after=3, down_after=4, factor=2, span=10) == (10.0, False)
    assert next_rho(0.1, 0, 4, rho0=1.0, up_after=3, down_after=4, factor=2, span=1e6, floor_span=10) == (0.1, False)


def test_bala_state_round_trips() -> None:
    c = BALA()
    c.start(10.0, 100)
    c.record_step(True)
    d = BALA()
    d.load_state_dict(c.state_dict())
    assert d.state == c.state


# ---- solves ---------------------------------------------------------------------------------------------

# The bound to 1e-4 relative needs eps_g well below 5e-4 (it is relative to |<C, X>| + |<b, y>|, twice the
# value): the Max-Cut solves run to 5e-5 and check max eps <= 5e-4 and the bound to 1e-4, as the issue asks.
MAXCUT_TOL = 5e-5


def test_bala_g14(tmp_path: Path) -> None:
    summary, rows = run_loop(MaxCut(str(DATA / "G14.txt"), tol=MAXCUT_TOL), BALA(), tmp_path)
    check_solution(summary, "G14", 5e-4)
    phase_rows = sum(r["step_type"] == "primal_phase" for r in rows)   # its warm start (bala_warm.py): one row
    assert phase_rows == 1 and rows[0]["step_type"] == "primal_phase"
    assert summary["descent_steps"] + summary["null_steps"] + phase_rows == summary["iterations"]
    assert {"step_type", "rho", "rank", "eig_iters", "bound", "eps_p", "eps_g"} <= set(rows[-1])
    # rounding: a valid partition, and GW's 0.878 guarantee against the certified bound
    signs = np.loadtxt(tmp_path / "cut.txt")
    assert signs.shape == (800,) and set(np.unique(signs)) <= {-1.0, 1.0}
    assert 0.878 * summary["sdp_bound"] <= summary["cut_value"] <= summary["sdp_bound"]


@pytest.mark.slow
def test_classic_alm_burer_monteiro_g14(tmp_path: Path) -> None:
    summary, rows = run_loop(MaxCut(str(DATA / "G14.txt"), tol=MAXCUT_TOL), ClassicALM(), tmp_path)
    check_solution(summary, "G14", 5e-4)
    assert rows[-1]["inner_evaluations"] > 0


@pytest.mark.parametrize("controller", [BALA, ClassicALM])
def test_mcp100_sdpa(tmp_path: Path, controller) -> None:
    summary, _ = run_loop(SDPAProblem(str(DATA / "mcp100.dat-s"), tol=MAXCUT_TOL), controller(), tmp_path)
    check_solution(summary, "mcp100", 5e-4)


# device=cuda sends the work through torch ops instead of numpy/scipy (alm_bench/kernels.py). CI has no GPU,
# so the tests run that branch on CPU tensors: it must reach the same certified values.
@pytest.mark.parametrize("controller, name", [(BALA, "G14"), (BALA, "mcp100"), (ClassicALM, "mcp100"),
                                              pytest.param(ClassicALM, "G14", marks=pytest.mark.slow)])
def test_the_device_cuda_code_path_on_the_cpu(tmp_path: Path, controller, name: str) -> None:
    problem = (MaxCut(str(DATA / "G14.txt"), tol=MAXCUT_TOL) if name == "G14"
               else SDPAProblem(str(DATA / "mcp100.dat-s"), tol=MAXCUT_TOL))
    with torch_kernels():
        assert not numpy_path(torch.device("cpu"))
        summary, _ = run_loop(problem, controller(), tmp_path)
    assert numpy_path(torch.device("cpu"))   # restored
    check_solution(summary, name, 5e-4)


def test_torch_kernels_compute_what_the_numpy_ones_do() -> None:
    p = SDPAProblem(str(DATA / "mcp100.dat-s"))
    v = torch.as_tensor(np.random.default_rng(0).standard_normal((p.n, 3)))
    y = torch.linspace(-1.0, 1.0, p.m, dtype=torch.float64)
    slack_np, c_np = p.slack(y).mm(v), p.c_mm(v)
    with torch_kernels():
        slack_t, c_t = p.slack(y).mm(v), p.c_mm(v)
    assert torch.allclose(slack_t, slack_np, atol=1e-12) and torch.allclose(c_t, c_np, atol=1e-12)


def test_theta1_trace_bound_is_derived() -> None:
    assert SDPAProblem(str(DATA / "theta1.dat-s")).gamma == pytest.approx(1.0)  # tr X = 1 is a constraint


def test_classic_alm_ends_its_inner_solve_at_the_time_limit(tmp_path: Path) -> None:
    """At scale one inner solve takes minutes (10^5 vertices: > 15): the time limit ends it after the L-BFGS
    step that passes it, not only the outer loop. L-BFGS steps of 5 iterations make the inner solve many steps."""
    def first_inner_solve(time_limit_s):
        lbfgs = {"name": "LBFGS", "max_iter": 5}
        stop = {"time_limit_s": time_limit_s} if time_limit_s else {"max_outer_iterations": 1}
        summary, rows = run_loop(MaxCut(str(DATA / "G14.txt"), tol=1e-9, rounding_trials=1),
                                 ClassicALM(inner_optimizer=lbfgs, **stop))
        return summary, rows[0]["inner_evaluations"]

    _, unlimited = first_inner_solve(None)
    summary, limited = first_inner_solve(1e-9)
    assert "time limit" in summary["message"] and summary["iterations"] == 1
    assert limited <= 7 < 50 < unlimited   # one step of at most 1.25 x 5 evaluations


@pytest.mark.slow
def test_bala_g11(tmp_path: Path) -> None:
    summary, _ = run_loop(MaxCut(str(DATA / "G11.txt"), tol=MAXCUT_TOL), BALA(), tmp_path)
    check_solution(summary, "G11", 5e-4)


def test_new_vectors_per_iteration_by_the_problem_class() -> None:
    # controller.r_c: null takes 12 on a sparse diag(X) = b problem (G11, a toroidal grid of degree 4), 6 on a
    # denser graph (G14, degree 11.7) and on a general SDP (theta1); a value given is kept.
    from alm_bench.conic.solvers.bala import new_vectors

    g11, g14, theta1 = MaxCut(str(DATA / "G11.txt")), MaxCut(str(DATA / "G14.txt")), SDPAProblem(str(DATA / "theta1.dat-s"))
    assert [new_vectors(None, p) for p in (g11, g14, theta1)] == [12, 6, 6]
    assert new_vectors(9, g11) == 9


@pytest.mark.slow
def test_classic_alm_g11(tmp_path: Path) -> None:
    summary, _ = run_loop(MaxCut(str(DATA / "G11.txt"), tol=MAXCUT_TOL), ClassicALM(), tmp_path)
    check_solution(summary, "G11", 5e-4)


def test_mixing_g14_and_its_refusal_on_general_sdps(tmp_path: Path) -> None:
    summary, _ = run_loop(MaxCut(str(DATA / "G14.txt"), tol=5e-4), MixingMethod(), tmp_path)
    assert summary["status"] == "converged" and summary["eps_p"] < 1e-12  # feasible by construction
    assert abs(summary["sdp_bound"] - SDP_VALUE["G14"]) <= 1e-3 * SDP_VALUE["G14"]
    with pytest.raises(UserError, match="diag"):
        run_loop(SDPAProblem(str(DATA / "theta1.dat-s")), MixingMethod(), tmp_path)


@pytest.mark.slow
def test_scs_on_mcp100_is_measured_by_our_metrics(tmp_path: Path) -> None:
    # One call (trace_every=None): SCS's own run to its eps, then our metrics on its point.
    summary, rows = run_loop(SDPAProblem(str(DATA / "mcp100.dat-s"), tol=5e-4), SCSSolver(eps=1e-6, trace_every=None),
                             tmp_path)
    assert len(rows) == 1 and rows[0]["scs_status"] == "solved"
    check_solution(summary, "mcp100", 5e-4)
    # Calls of 20 iterations, warm-started: a row each, the iterations adding up, the same answer.
    summary, rows = run_loop(SDPAProblem(str(DATA / "mcp100.dat-s"), tol=5e-4), SCSSolver(eps=1e-6, trace_every=20),
                             tmp_path)
    assert len(rows) >= 2 and [r["scs_iterations"] for r in rows[:2]] == [20, 40]
    # It stops at our 5e-4, sooner than SCS's own 1e-6: a certified bound above the value, within 1e-3.
    assert summary["status"] == "converged" and max(summary["eps_p"], summary["eps_d"], summary["eps_g"]) <= 5e-4
    assert 0 <= summary["sdp_bound"] - SDP_VALUE["mcp100"] <= 1e-3 * SDP_VALUE["mcp100"]
    # SCS, content at its own loose eps, short of ours: 'stopped', in its words and ours (was 'max_iterations').
    summary, rows = run_loop(SDPAProblem(str(DATA / "mcp100.dat-s"), tol=1e-6), SCSSolver(eps=1e-2, trace_every=None),
                             tmp_path)
    assert len(rows) == 1 and rows[0]["scs_status"] == "solved" and rows[0]["max_eps"] > 1e-6
    assert summary["status"] == "stopped"
    assert summary["message"] == f"SCSSolver ended (scs: solved) at max eps {rows[0]['max_eps']:.2g}, " \
                                 f"short of problem.tol=1e-06"


def test_certified_bound_at_a_converged_dual_is_above_the_optimum_and_tight(tmp_path: Path) -> None:
    """-(<b, y> + gamma min(0, lambda_min)) bounds the Max-Cut SDP value from above at any y, if lambda_min is
    right. At BALA's y the slack is indefinite (lambda_min ~ -1.2), so the bound rests on that eigenvalue:
    with the certified one it is above the optimum and within 1e-4 of it; one too large by 1e-3 of the
    slack's scale (a Ritz value that has not converged) gives a 'bound' below the optimum."""
    problem = MaxCut(str(DATA / "G14.txt"), tol=1e-5, rounding_trials=1)
    summary, _ = run_loop(problem, BALA(), tmp_path)
    assert summary["status"] == "converged"
    y = checkpoint.load_loop(tmp_path, "conic")["best_y"]   # the dual point the summary's bound comes from
    slack = problem.slack(y)
    lam = certified_lambda_min(slack)

    def bound(lambda_min: float) -> float:   # in the file's convention (a maximisation): -(dual bound)
        return -(float(problem.b @ y) + problem.gamma * min(0.0, lambda_min))

    optimum = SDP_VALUE["G14"]
    assert lam < -1e-3, "at an indefinite slack the bound depends on lambda_min, else this shows nothing"
    assert optimum <= bound(lam) <= optimum * (1 + 1e-4), bound(lam)
    # the summary reports this bound, or a tighter one that a confirmation certified during the run
    assert optimum <= summary["sdp_bound"] <= bound(lam) * (1 + 1e-12)
    assert bound(lam + 1e-3 * slack.gershgorin()) < optimum


def g14_edges() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """G14.txt's edges (i j w, 1-based after an "n m" header), read without the package's reader."""
    edges = np.loadtxt(DATA / "G14.txt", skiprows=1, ndmin=2)
    return edges[:, 0].astype(int) - 1, edges[:, 1].astype(int) - 1, edges[:, 2]


def test_rounding_local_search_never_loses() -> None:
    i, j, w = g14_edges()

    def cut(signs: np.ndarray) -> float:   # sum over the edges of w_ij [s_i != s_j]
        return float(w[signs[i] != signs[j]].sum())

    p = MaxCut(str(DATA / "G14.txt"))
    factor = np.random.default_rng(0).normal(size=(800, 5))
    plain = goemans_williamson(p.adjacency, factor, trials=4, local_search=False)
    polished = goemans_williamson(p.adjacency, factor, trials=4, local_search=True)
    assert plain[1] == pytest.approx(cut(plain[0]), abs=1e-9)
    assert polished[1] == pytest.approx(cut(polished[0]), abs=1e-9)
    assert polished[1] > plain[1]
    # ... and the polished cut is 1-flip optimal: moving a vertex to the other side gains w on each edge to
    # its own side and loses w on each cut edge; no vertex gains
    s = polished[0]
    per_edge = np.where(s[i] == s[j], w, -w)
    gain = np.zeros(800)
    np.add.at(gain, i, per_edge)
    np.add.at(gain, j, per_edge)
    assert gain.max() <= 1e-9
    for v in (0, int(np.argmax(gain)), 799):   # the gain formula is the change of the cut
        flipped = s.copy()
        flipped[v] = -flipped[v]
        assert cut(flipped) == pytest.approx(polished[1] + gain[v], abs=1e-9)


def scan_local_search(adjacency, signs: np.ndarray) -> np.ndarray:
    """The 1-flip search written as a scan for the best gain each flip (O(n) a flip): what the heap must match."""
    s = signs.astype(np.float64).copy()
    ws = adjacency @ s
    while True:
        gain = s * ws
        i = int(np.argmax(gain))
        if gain[i] <= 1e-12:
            return s
        lo, hi = adjacency.indptr[i], adjacency.indptr[i + 1]
        ws[adjacency.indices[lo:hi]] -= 2 * s[i] * adjacency.data[lo:hi]
        s[i] = -s[i]


@pytest.mark.parametrize("spec", ["random:n=3000,degree=6,seed=1,weights=pm1", "toroidal:40x40", "planar:n=2000"])
def test_local_search_makes_the_flips_of_a_scan(spec: str) -> None:
    """Same flips, ties included (+-1 weights and grids tie often): the same partition, bit for bit."""
    from alm_bench.conic.graphs import generate
    from alm_bench.conic.rounding import local_search

    w = generate(spec)
    for seed in range(3):
        start = np.where(np.random.default_rng(seed).random(w.shape[0]) < 0.5, -1.0, 1.0)
        polished = local_search(w, start)
        assert np.array_equal(polished, scan_local_search(w, start))
        assert (polished != start).sum() > 100   # it did work


@pytest.mark.parametrize("omega", ["simplex", "box"])
def test_lp_toy_matches_its_optimum(tmp_path: Path, omega: str) -> None:
    summary, rows = run_loop(BoxLP(omega=omega), BALA(), tmp_path)
    assert summary["status"] == "converged"
    assert abs(summary["objective"] - 0.5) <= 1e-6 and abs(rows[-1]["x1"] - 0.5) <= 1e-6


def test_bala_subproblem_torch_and_numpy_paths_agree():
    """The CUDA path (torch) and the CPU path (numpy) run the same FISTA: same iterations, same answer."""
    import numpy as np
    import torch

    from alm_bench.conic.solvers.bala_subproblem import Subproblem, solve_subproblem, solve_subproblem_np, svec_indices

    rng = np.random.default_rng(0)
    r, n = 4, 30
    m = 1 + r * (r + 1) // 2
    a = rng.standard_normal((n, m))
    b = np.ones(n)
    gram, q = a.T @ a, 2.0 * (a.T @ b) + a.T @ rng.standard_normal(n)
    x0 = np.zeros(m)
    res_np = lambda x: float(np.square(b - a @ x).sum())  # noqa: E731
    x_np, it_np, gap_np, _ = solve_subproblem_np(gram, q, 2.0, 5.0, r, True, x0, res_np, 0.5, 500)
    sub = Subproblem(gram=torch.from_numpy(gram), q=torch.from_numpy(q), rho=2.0, gamma=5.0, r=r, use_eta=True,
                     idx=svec_indices(r, torch.device("cpu")))
    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    x_t, it_t, gap_t = solve_subproblem(sub, torch.from_numpy(x0), lambda x: float((bt - at @ x).square().sum()),
                                        0.5, 500)
    assert it_np == it_t and it_np < 500
    assert np.allclose(x_t.numpy(), x_np, atol=1e-9) and abs(gap_np - gap_t) < 1e-9


def test_largest_eigenvalue_is_a_tight_upper_estimate() -> None:
    """FISTA's step 1/L needs L >= lambda_max: the Lanczos estimate is above it and within its tolerance."""
    from alm_bench.conic.solvers.bala_subproblem import largest_eigenvalue

    rng = np.random.default_rng(1)
    for m, n in ((30, 50), (120, 400), (300, 900)):
        a = rng.standard_normal((n, m)) * np.geomspace(1, 1e-4, m)   # a graded, ill-conditioned Gram
        gram = a.T @ a
        exact = float(np.linalg.eigvalsh(gram)[-1])
        estimate = largest_eigenvalue(gram, rel_tol=1e-3)
        assert exact * (1 - 1e-12) <= estimate <= exact * (1 + 2e-3), (m, exact, estimate)


def test_diagonal_constraint_matrix_is_the_svec_diagonal_map() -> None:
    """Column (a, b) of the subproblem's matrix is diag(p_a p_b^T + p_b p_a^T) / sqrt 2 off the diagonal of S,
    so that A_sub @ svec(S) = diag(P S P^T) (and column 0 is the aggregate's diagonal)."""
    from alm_bench.conic.solvers.bala_subproblem import SvecMaps
    from alm_bench.conic.solvers.bala_subproblem import diagonal_constraint_matrix

    rng = np.random.default_rng(2)
    n, r = 40, 5
    basis = np.linalg.qr(rng.standard_normal((n, r)))[0]
    agg = rng.random(n)
    s = rng.standard_normal((r, r))
    s = s + s.T
    a_sub = diagonal_constraint_matrix(basis, agg)
    x = np.concatenate([[0.7], SvecMaps(r).svec(s)])
    assert a_sub.shape == (n, 1 + r * (r + 1) // 2)
    assert np.allclose(a_sub @ x, 0.7 * agg + np.diag(basis @ s @ basis.T), atol=1e-12)
