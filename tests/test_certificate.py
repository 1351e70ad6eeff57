"""The certified bound of SDPs without a trace bound (conic/certificate.py, conic/dual_barrier.py): on a
generated degenerate multi-block SDP with a known optimum, the repaired point's slack is PSD in exact rational
arithmetic and its bound is within 1e-7 of the optimum; truss1 and truss3 (SDPLIB) from BALA's final point."""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from alm_bench.conic.certificate import DualCertifier, _lift_face, repair
from alm_bench.conic.dual_barrier import DualBarrier, _line_search
from alm_bench.conic.problems import ConicSDP, SDPAProblem
from alm_bench.conic.solvers.bala import BALA
from conftest import DATA, run_loop

BLOCKS = [4, 4, 4, -3]
# The file's (maximisation) convention: truss1 by CSDP to 1e-8 (SDPLIB 1.2 prints -8.999996), truss3 SDPLIB's.
TRUSS1, TRUSS3 = -8.99999631, -9.1099962


def _psd_pair(rng: np.random.Generator, r: int, rank_x: int, rank_z: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X, Z PSD of order r with X Z = 0 (X on the first rank_x vectors of a random orthonormal basis, Z on the
    last rank_z; rank_x + rank_z < r: not strictly complementary), and the basis of Z's null space."""
    basis, _ = np.linalg.qr(rng.standard_normal((r, r)))
    x = basis[:, :rank_x] @ np.diag(rng.uniform(1, 2, rank_x)) @ basis[:, :rank_x].T
    z = basis[:, r - rank_z:] @ np.diag(rng.uniform(1, 2, rank_z)) @ basis[:, r - rank_z:].T
    return x, z, basis[:, :r - rank_z]


def degenerate_sdp(seed: int = 0, m: int = 10) -> tuple[ConicSDP, np.ndarray, float]:
    """(problem, an optimal y*, the optimum b.y*) over blocks 4, 4, 4 and an LP block of 3, built around the
    optimal pair X*, Z* = C - A^*(y*) with <X*, Z*> = 0: rank X* = 3, 3, 2 and rank Z* = 1 in the PSD blocks
    (Z*'s null space N has dimension 9 there: the face's 6 + 6 + 6 equations exceed m), x* = (1, 2, 0) and
    z* = (0, 0, 1) on the LP. A_1 = U M U^T on N (M positive definite, not I) makes y* - t e_1 strictly
    feasible; the other A_k are random. Every A_k is orthogonal to D = v v^T, v Z*'s eigenvector in block 1
    (A(D) = 0, <C, D> > 0): the feasible set is unbounded and no trace certificate exists, as in the truss
    problems."""
    rng = np.random.default_rng(seed)
    n = sum(abs(s) for s in BLOCKS)
    x_star, z_star, lift = np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n))
    pattern = np.zeros((n, n), dtype=bool)
    d = np.zeros((n, n))
    at = 0
    for size, ranks in zip(BLOCKS, [(3, 1), (3, 1), (2, 1), None]):
        span = slice(at, at + abs(size))
        if size > 0:
            x_star[span, span], z_star[span, span], null = _psd_pair(rng, size, *ranks)
            g = rng.standard_normal((null.shape[1], null.shape[1]))
            lift[span, span] = null @ (g @ g.T + 0.1 * np.eye(null.shape[1])) @ null.T
            pattern[span, span] = True
            if at == 0:
                v = np.linalg.eigh(z_star[span, span])[1][:, -1]
                d[span, span] = np.outer(v, v)
        at += abs(size)
    lp = np.arange(12, 15)
    x_star[lp, lp], z_star[lp, lp], lift[lp, lp] = [1.0, 2.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.5, 0.0]
    pattern[lp, lp] = True
    a = [lift]
    for _ in range(m - 1):
        g = rng.standard_normal((n, n))
        g = np.where(pattern, g + g.T, 0.0)
        a.append(g - (g * d).sum() / (d * d).sum() * d)
    y_star = rng.standard_normal(m)
    c = z_star + sum(yk * ak for yk, ak in zip(y_star, a))
    b = np.array([(ak * x_star).sum() for ak in a])
    rows, cols = np.nonzero(np.triu(pattern))
    k = np.repeat(np.arange(m), rows.size)
    values = np.concatenate([ak[rows, cols] for ak in a])
    problem = ConicSDP("degenerate", sp.csr_matrix(np.where(pattern, c, 0.0)), k, np.tile(rows, m),
                       np.tile(cols, m), values, b, trace_bound=None, tol=1e-6, source="generated",
                       block_sizes=BLOCKS)
    return problem, y_star, float(b @ y_star)


def pushed_off(problem: ConicSDP, size: float) -> np.ndarray:
    """A random move of y* of this size that raises <b, y> (so that <b, y> > optimum and the bound's loss
    shows, instead of the cap at <b, y>)."""
    move = size * np.random.default_rng(1).standard_normal(problem.m)
    return move if float(problem.b_np @ move) > 0 else -move


def exactly_psd(problem: ConicSDP, y: np.ndarray) -> bool:
    """C - A^*(y) PSD, decided in rational arithmetic from the floats of C, the A_k and y (symmetric
    elimination: a negative pivot, or a zero pivot with a nonzero row, refutes it)."""
    n = problem.n
    z = [[Fraction(0)] * n for _ in range(n)]
    c = problem.c_op.matrix.tocoo()
    for i, j, value in zip(c.row, c.col, c.data):
        z[i][j] += Fraction(float(value))
    for k, i, j, value in zip(problem._k, problem._i, problem._j, problem._v):
        z[i][j] -= Fraction(float(y[k])) * Fraction(float(value))
    for p in range(n):
        pivot = z[p][p]
        if pivot < 0 or (pivot == 0 and any(z[p][q] != 0 for q in range(p + 1, n))):
            return False
        if pivot == 0:
            continue
        for i in range(p + 1, n):
            if z[i][p] != 0:
                factor = z[i][p] / pivot
                for j in range(p + 1, n):
                    z[i][j] -= factor * z[p][j]
    return True


def test_the_generated_problem_has_the_optimum_it_was_built_around() -> None:
    problem, y_star, optimum = degenerate_sdp()
    assert problem.trace is None   # no e with sum e_k A_k >= I: the certificate must come from a feasible y
    values = np.linalg.eigvalsh(problem.slack(torch.from_numpy(y_star)).scipy().toarray())
    assert values[0] >= -1e-12 and (np.abs(values) <= 1e-12).sum() >= 11   # Z* singular on a face of 11


@pytest.mark.parametrize("push", [1e-9, 1e-7, 1e-5])
def test_repair_certifies_a_degenerate_point_to_its_optimum(push: float) -> None:
    """y* pushed off feasibility (lambda_min ~ -push) and above the optimum: the repaired point's slack is PSD
    in exact arithmetic and its bound is within 1e-7 relative of the optimum, where the face lift alone (the
    face 20 equations, m = 10) gives none."""
    problem, y_star, optimum = degenerate_sdp()
    y = torch.from_numpy(y_star + pushed_off(problem, push))
    lam = float(np.linalg.eigvalsh(problem.slack(y).scipy().toarray())[0])
    assert lam < -push / 100
    point, (inner, lam_inner) = repair(problem, y)
    assert exactly_psd(problem, point.numpy()) and lam_inner > 0 and exactly_psd(problem, inner.numpy())
    bound, by = DualCertifier(problem).certify(y), float(problem.b @ y)
    assert by > optimum and bound <= optimum + 1e-12 * abs(optimum)
    assert optimum - bound <= 1e-7 * abs(optimum)


def test_the_face_lift_alone_is_loose_there() -> None:
    """The same point by the face lift only (what repair did before the central path): no bound (or one far
    looser than 1e-7), which is what the test above guards against."""
    problem, y_star, optimum = degenerate_sdp()
    y = torch.from_numpy(y_star + pushed_off(problem, 1e-9))
    found = _lift_face(problem, y)
    assert found is None or optimum - float(problem.b @ found[0]) > 1e-6 * abs(optimum)


def test_the_barrier_matches_its_definition() -> None:
    """The Schur complement and A(W) of DualBarrier equal tr(W A_k W A_l) and <A_k, W> formed densely."""
    problem, y_star, _ = degenerate_sdp(seed=3, m=6)
    barrier = DualBarrier(problem)
    y = y_star + 0.1
    z = problem.slack(torch.from_numpy(y)).scipy().toarray()
    sigma = 1.0 - float(np.linalg.eigvalsh(z)[0])
    z += sigma * np.eye(problem.n)
    w = np.linalg.inv(z)
    dense = [np.zeros((problem.n, problem.n)) for _ in range(problem.m)]
    for k, i, j, value in zip(problem._k, problem._i, problem._j, problem._v):
        dense[k][i, j] += value
    hessian, a_w, _, _ = barrier.schur(y, sigma)
    assert np.allclose(a_w, [np.trace(w @ ak) for ak in dense], rtol=1e-10, atol=1e-12)
    assert np.allclose(hessian, [[np.trace(w @ ak @ w @ al) for al in dense] for ak in dense], rtol=1e-9,
                       atol=1e-12)


def test_the_line_search_maximises_the_barrier_along_the_step() -> None:
    rates, slope = np.array([2.0, 0.5, -1.0]), 3.0   # phi'(0) = slope - sum(rates) > 0, as at a Newton step
    t = _line_search(slope, rates)
    phi = lambda s: s * slope + np.log(1 - s * rates).sum()  # noqa: E731
    assert 0 < t < 0.5 and phi(t) >= max(phi(t * 0.99), phi(t * 1.01))
    assert abs(slope - (rates / (1 - t * rates)).sum()) <= 1e-9


@pytest.mark.slow
def test_truss1_is_certified_to_its_optimum(tmp_path: Path) -> None:
    summary, _ = run_loop(SDPAProblem(str(DATA / "truss1.dat-s"), tol=1e-6), BALA(), tmp_path)
    assert summary["status"] == "converged"
    assert TRUSS1 - 1e-8 <= summary["sdp_bound"] <= TRUSS1 * (1 - 1e-6)   # an upper bound (max), within 1e-6


@pytest.mark.slow
def test_truss3_is_certified_at_bala_s_final_point(tmp_path: Path) -> None:
    """truss3: 15 of the final slack's 31 eigenvalues within 1e-9 of 0; the face lift certified 9.0809 (3e-3
    loose), the central path SDPLIB's -9.1099962 to 1e-6."""
    path = DATA / "truss3.dat-s"
    summary, _ = run_loop(SDPAProblem(str(path), tol=1e-6), BALA(), tmp_path)
    assert summary["status"] == "converged" and math.isfinite(summary["sdp_bound"])
    assert abs(summary["sdp_bound"] - TRUSS3) <= 1e-6 * abs(TRUSS3)
