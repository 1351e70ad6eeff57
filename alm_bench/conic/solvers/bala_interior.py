"""BALA's subproblem by an interior-point (barrier) method: the fallback where FISTA needs hundreds of
iterations (an ill-conditioned Gram: constraints of very different scales, as gpp's <J, X> = 0 beside
diag(X) = 1, or the control and truss problems; the toroidal G11 in the exploratory study).

    min_x  f(x) = 1/2 x^T H x - q^T x    over x = (eta, svec S):  eta >= 0, S PSD, eta + tr S <= gamma

Newton's method on f - tau (log eta + log det S + log sigma), sigma = gamma - eta - tr S, with tau divided
by TAU_FACTOR after each centering; the Hessian of -log det S in svec coordinates is
[2 a_p a_q (W_{a c} W_{b d} + W_{a d} W_{b c})]  (W = S^{-1}, p = (a, b), q = (c, d), a_p = 1/2 on the
diagonal, 1/sqrt 2 off it). Each Newton step is one dense solve of order 1 + r(r+1)/2, independent of n,
and the number of steps does not depend on the conditioning of H. It stops by the same rule as FISTA
(bala_subproblem.fista): Frank-Wolfe gap <= kappa^2 (rho/2) |b - A x|^2.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse

from alm_bench.conic.solvers.bala_subproblem import SvecMaps

TAU_FACTOR = 8.0        # barrier weight divided by this after each centering
CENTERED = 0.25          # Newton decrement^2 / 2 below which a point counts as centered
START_BLEND = 0.1        # the start: (1 - this) * warm start + this * the center of the set
MAX_NEWTON = 200
# Woodbury's solve of K = rho F^T F + tau B divides B0^-1 rhs minus its correction by tau: as tau -> 0 the two
# agree to more and more digits, and the Newton steps' residuals reached 1e-3..1 of |g|. The subproblem's
# Frank-Wolfe gap then stalled near the predicted decrease, every step was null, and rho stayed at its cap:
# control1 ran 1413 iterations (34 s) to 1e-6, control2 and qap5 never got there in 30 s (2.3e-5, 1.2e-4).
# Where a refined Woodbury step leaves a residual above NEWTON_RESIDUAL |g|, K itself (order d) is factored
# from then on in that subproblem: control1 81 iterations (1.9 s), control2 88 (5 s), qap5 19 (1 s); gpp100,
# theta1, whose residuals stay small, run as before.
NEWTON_RESIDUAL = 1e-6
# At rho ~1e5..1e8 (whole blocks late in a run: hinf4, truss7, qap6, control5) the Frank-Wolfe gap bottoms out
# at round-off of |q| |x| above the rule; tau then fell to ~1e-13 and Newton's decrement, all round-off, never
# met CENTERED again: 120 of MAX_NEWTON steps bought nothing (truss7: 70 of 96 subproblems, 53 of 60 s). A
# centered point whose tau * nu (the central path's gap) is GAP_FLOOR below the rule ends the method there (that
# point, not the one of least measured gap: the gap is round-off by then, and truss7 took 17 s to 1e-6 so, 60 s
# for 1.4e-6 with the other), and so do CENTERING_STEPS Newton steps without a centered point.
GAP_FLOOR = 1e-3
CENTERING_STEPS = 30
DIRECT_NEWTON_LIMIT = 2000   # K's order up to which it may be factored: 32 MB, ~0.2 s a Cholesky


def _barrier_hessian_s(w: np.ndarray, maps: SvecMaps) -> np.ndarray:
    a, b = maps.a, maps.b   # W = S^{-1} is block-diagonal with S: its rows for the pairs S has are these
    alpha = np.where(a == b, 0.5, 1.0 / math.sqrt(2.0))
    return 2.0 * np.outer(alpha, alpha) * (w[np.ix_(a, a)] * w[np.ix_(b, b)] + w[np.ix_(a, b)] * w[np.ix_(b, a)])


def solve_subproblem_interior(hess: np.ndarray, q: np.ndarray, rho: float, gamma: float, maps: SvecMaps,
                              use_eta: bool,
                              x0: np.ndarray, residual_sq, kappa: float, fw_gap, factor: np.ndarray | None = None,
                              capped: bool = True, max_newton: int = MAX_NEWTON,
                              n_lp: int = 0) -> tuple[np.ndarray, int, float]:
    """x, Newton steps, final Frank-Wolfe gap. `fw_gap(x, grad)` is the subproblem's certified suboptimality
    (the same function FISTA uses); `factor` F, if given, has hess = rho F^T F, which makes a Newton step
    cheaper when F has fewer rows than columns. `capped` False drops the barrier of eta + tr S <= gamma, for
    problems whose constraints fix tr X = gamma (theta: tr X = 1 is a row of A): there the cap is active at
    the solution with a zero multiplier, its barrier term grew like 1 / sigma^2 with sigma -> 0, and Newton's
    system lost all precision (no descent direction at a Frank-Wolfe gap 10x the rule). The penalty then holds
    the trace, and the point returned is scaled into the cap. The last `n_lp` entries of x are the diagonal
    (LP) blocks' entries, each with its log barrier. `maps`: S's coordinates (bala_subproblem.SvecMaps)."""
    r = maps.r
    d = hess.shape[0]
    ds = maps.size
    s_part, lp = slice(1, 1 + ds), slice(1 + ds, d)
    free = np.arange(d) if use_eta else np.arange(1, d)
    trace_row = np.zeros(d)
    trace_row[s_part] = maps.svec(np.eye(r))
    trace_row[lp] = 1.0
    if use_eta:
        trace_row[0] = 1.0
    nu = r + 1 + (1 if use_eta else 0) + n_lp
    center = np.zeros(d)
    center[s_part] = maps.svec(np.eye(r)) * gamma / nu
    center[lp] = gamma / nu
    if use_eta:
        center[0] = gamma / nu
    x = (1 - START_BLEND) * _inside(x0, maps, gamma, use_eta) + START_BLEND * center

    cap = gamma if capped else math.inf   # the barrier's cap

    def into_cap(v: np.ndarray) -> np.ndarray:
        total = float(trace_row @ v)
        return v if total <= gamma else v * (gamma / total)

    def finish(x: np.ndarray, grad: np.ndarray, tau: float, steps: int) -> tuple[np.ndarray, int, float]:
        """The best of x, its purified point and its polish on the face (each where it is no worse)."""
        x = into_cap(x)
        gap = fw_gap(x, hess @ x - q)
        pure = _purified(x, grad, tau, maps, cap, trace_row)
        pure_gap = fw_gap(pure, hess @ pure - q)
        if pure_gap <= max(gap, kappa ** 2 * 0.5 * rho * residual_sq(pure)):
            x, gap = pure, pure_gap
        root = None if factor is None else math.sqrt(rho) * factor
        for rank in ([] if n_lp else _face_ranks(x, maps)):
            polished = _polish_on_face(x, rank, hess, q, gamma, capped, maps, use_eta, trace_row, root)
            if polished is not None:
                polished_gap = fw_gap(polished, hess @ polished - q)
                if polished_gap < gap:
                    x, gap = polished, polished_gap
        return x, steps, gap

    grad = hess @ x - q
    gap = fw_gap(x, grad)
    best = (gap, x)
    tau = max(gap / nu, 1e-300)
    steps = since_centered = 0
    direct = False   # Newton systems by Woodbury (F's rows) until its residual says otherwise
    while steps < max_newton and since_centered < CENTERING_STEPS:
        steps += 1
        since_centered += 1
        s = maps.smat(x[s_part]).copy()
        sigma = cap - float(trace_row @ x)
        eta = float(x[0]) if use_eta else 0.0
        x_lp = x[lp]
        if sigma <= 0 or (use_eta and eta <= 0) or (n_lp and x_lp.min() <= 0):   # at the boundary to round-off
            break
        w = _inverse(s, maps)
        g_bar = trace_row / sigma
        g_bar[s_part] -= maps.svec(w)
        g_bar[lp] -= 1.0 / x_lp
        if use_eta:
            g_bar[0] -= 1.0 / eta
        g = grad + tau * g_bar
        solve, apply = _newton_system(hess, None if direct else factor, rho, tau, s, w, eta, x_lp, sigma,
                                      trace_row, maps, free, use_eta)
        dx = _refined_step(solve, apply, g)
        if not direct and factor is not None and d <= DIRECT_NEWTON_LIMIT and \
                float(np.linalg.norm(g + apply(dx))) > NEWTON_RESIDUAL * float(np.linalg.norm(g)):
            direct = True   # Woodbury has lost its digits: this and the later (smaller tau) steps solve K itself
            dx = _refined_step(*_newton_system(hess, None, rho, tau, s, w, eta, x_lp, sigma, trace_row, maps,
                                               free, use_eta), g)
        decrement = -float(g @ dx)
        if not decrement > 0:   # round-off has won: no descent direction left
            break
        alpha = _line_search(x, dx, grad, hess, tau, s, maps, cap, trace_row, use_eta, lp)
        if alpha <= 0:
            break
        x = x + alpha * dx
        grad = hess @ x - q
        if decrement / (2 * tau) <= CENTERED:   # the Newton decrement of f / tau + barrier
            inside = into_cap(x)
            gap = fw_gap(inside, hess @ inside - q)
            if gap < best[0]:
                best = (gap, x)
            rule = kappa ** 2 * 0.5 * rho * residual_sq(inside)
            if gap <= rule or tau * nu <= GAP_FLOOR * rule:
                return finish(x, grad, tau, steps)
            tau /= TAU_FACTOR
            since_centered = 0
    inside = into_cap(x)
    if fw_gap(inside, hess @ inside - q) > best[0]:
        x = best[1]
    return finish(x, hess @ x - q, tau, steps)


def _refined_step(solve, apply, g: np.ndarray) -> np.ndarray:
    """The Newton step K^{-1} (-g) and one step of iterative refinement: tau -> 0 makes the system stiff."""
    dx = solve(-g)
    return dx + solve(-g - apply(dx))


def _newton_system(hess, factor, rho, tau, s, w, eta, x_lp, sigma, trace_row, maps, free, use_eta):
    """(solve, apply) for the Newton matrix K = hess + tau B, B the barrier's Hessian
    diag(1/eta^2, W (x) W, 1/x_lp^2) + a a^T / sigma^2: solve(rhs) = K^{-1} rhs (Woodbury where hess = rho F^T F has
    low rank, else a Cholesky factor), apply(v) = K v, for iterative refinement. Components outside `free`
    (eta when it is not a variable) stay 0."""
    d = hess.shape[0]
    ds = maps.size
    s_part, lp = slice(1, 1 + ds), slice(1 + ds, d)

    def apply(v: np.ndarray) -> np.ndarray:
        out = hess @ v
        barrier = trace_row * (float(trace_row @ v) / sigma ** 2)
        barrier[s_part] += _congruence(w, v[s_part], maps)
        barrier[lp] += v[lp] / x_lp ** 2
        if use_eta:
            barrier[0] += v[0] / eta ** 2
        out = out + tau * barrier
        if not use_eta:
            out[0] = 0.0
        return out

    if factor is not None and factor.shape[0] + 1 < d:
        u = np.concatenate([math.sqrt(rho) * factor, (math.sqrt(tau) / sigma) * trace_row[None]], axis=0)
        b0_inv_u = _b0_inverse(u, s, eta, x_lp, maps)
        small_solve = _psd_solver(tau * np.eye(u.shape[0]) + b0_inv_u @ u.T)

        def solve(rhs: np.ndarray) -> np.ndarray:
            b0_inv_rhs = _b0_inverse(rhs[None], s, eta, x_lp, maps)[0]
            correction = small_solve(u @ b0_inv_rhs) @ b0_inv_u
            return (b0_inv_rhs - correction) / tau
        return solve, apply

    h_bar = np.outer(trace_row, trace_row) / sigma ** 2
    h_bar[s_part, s_part] += _barrier_hessian_s(w, maps)
    h_bar[np.arange(1 + ds, d), np.arange(1 + ds, d)] += 1.0 / x_lp ** 2
    if use_eta:
        h_bar[0, 0] += 1.0 / eta ** 2
    k_solve = _psd_solver((hess + tau * h_bar)[np.ix_(free, free)])

    def solve(rhs: np.ndarray) -> np.ndarray:
        out = np.zeros(d)
        out[free] = k_solve(rhs[free])
        return out
    return solve, apply


def _psd_solver(mat: np.ndarray):
    """rhs -> mat^{-1} rhs for a symmetric PSD matrix: Cholesky, or where round-off made it indefinite (tau
    near 0), the pseudo-inverse of its eigendecomposition."""
    mat = (mat + mat.T) / 2
    chol, info = scipy.linalg.lapack.dpotrf(mat, lower=True)
    if info == 0:
        return lambda rhs: scipy.linalg.cho_solve((chol, True), rhs, check_finite=False)
    values, vectors = np.linalg.eigh(mat)
    keep = values > 1e-14 * max(float(values[-1]), 1e-300)
    inverse = 1.0 / values[keep]
    basis = vectors[:, keep]
    return lambda rhs: basis @ (inverse * (basis.T @ rhs))


def _line_search(x, dx, grad, hess, tau, s, maps, gamma, trace_row, use_eta, lp) -> float:
    """The minimiser of phi(alpha) = f(x + alpha dx) + tau barrier(x + alpha dx) on [0, 0.99 alpha_max], found
    from phi' alone (bisection): phi' is a sum of scalar terms in alpha (the generalised eigenvalues mu of
    (dS, S) give d/dalpha -log det(S + alpha dS) = -sum mu / (1 + alpha mu)), so no difference of two
    large function values decides the step (those stalled it once tau was 1e-10 of |f|)."""
    try:
        mu = _generalised_eigenvalues(dx[1:lp.start], s, maps)
    except np.linalg.LinAlgError:
        return 0.0
    sigma, slope = gamma - float(trace_row @ x), float(trace_row @ dx)
    g_dx, h_dx = float(grad @ dx), float(dx @ (hess @ dx))
    limit = math.inf
    if mu[0] < 0:
        limit = -1.0 / mu[0]
    if slope > 0:
        limit = min(limit, sigma / slope)
    if use_eta and dx[0] < 0:
        limit = min(limit, -x[0] / dx[0])
    x_lp, dx_lp = x[lp], dx[lp]
    falling = dx_lp < 0
    if falling.any():
        limit = min(limit, float((-x_lp[falling] / dx_lp[falling]).min()))

    def derivative(alpha: float) -> float:
        value = g_dx + alpha * h_dx - tau * float((mu / (1 + alpha * mu)).sum())
        value -= tau * float((dx_lp / (x_lp + alpha * dx_lp)).sum())
        value += tau * slope / (sigma - alpha * slope)
        if use_eta:
            value -= tau * dx[0] / (x[0] + alpha * dx[0])
        return value

    high = min(1.0, 0.99 * limit)
    if derivative(high) <= 0:
        return high
    low = 0.0
    for _ in range(50):
        mid = 0.5 * (low + high)
        if derivative(mid) > 0:
            high = mid
        else:
            low = mid
    return low


def _purified(x: np.ndarray, grad: np.ndarray, tau: float, maps: SvecMaps, gamma: float,
              trace_row: np.ndarray) -> np.ndarray:
    """The barrier keeps every eigenvalue of S (and eta) positive: on the central path lambda_i(S) times the
    dual slack along its eigenvector, z_i = u_i^T (grad_S f + tau / sigma I) u_i ~ tau, is tau. Directions
    whose primal share lambda_i / max lambda is below their dual share z_i / max z belong to the inactive
    part of the cone and are set to zero, so that rank(S) is the solution's (the bundle keeps rank(S) + 2
    directions; the barrier's full rank made it grow to its cap)."""
    sigma = max(gamma - float(trace_row @ x), 1e-300)
    s_part = slice(1, 1 + maps.size)
    lam, vec, share = maps.ranked_eigh(maps.smat(x[s_part]).copy())   # the share within each block, if several
    dual = ((maps.smat(grad[s_part]) @ vec) * vec).sum(axis=0) + tau / sigma
    top, top_dual = max(float(lam.max()), 1e-300), max(float(np.abs(dual).max()), 1e-300)
    lam = np.where(share > np.maximum(dual, 0.0) / top_dual, lam, 0.0)
    out = x.copy()
    out[s_part] = maps.svec((vec * lam) @ vec.T)
    eta_dual = grad[0] + tau / sigma
    if x[0] / max(top, float(x[0])) <= max(eta_dual, 0.0) / top_dual:
        out[0] = 0.0
    return out


def _face_ranks(x: np.ndarray, maps: SvecMaps, candidates: int = 3) -> list[int]:
    """Guesses of rank(S) at the solution from an interior point, whose eigenvalues off the face are small but
    not 0 (of the order of tau over their dual slack): the cuts at the largest ratios between consecutive
    eigenvalues (theta1: 7 at a ratio 40, 10 at a ratio 760)."""
    if maps.blocks is None:
        lam = np.sort(np.linalg.eigvalsh(maps.smat(x[1:]).copy()))[::-1]
    else:   # by each eigenvalue's share of its block's largest (ranked_eigh), the order _polish_on_face cuts
        lam = maps.ranked_eigh(maps.smat(x[1:]).copy())[2][::-1]
    lam = lam[lam > 1e-14 * max(float(lam[0]), 1e-300)]
    if lam.size <= 1:
        return [lam.size] if lam.size else []
    ratios = lam[:-1] / lam[1:]
    order = np.argsort(ratios)[::-1][:candidates]
    return sorted({int(i) + 1 for i in order} | {int(lam.size)})


def _polish_on_face(x: np.ndarray, rank: int, hess: np.ndarray, q: np.ndarray, gamma: float, capped: bool,
                    maps: SvecMaps, use_eta: bool, trace_row: np.ndarray,
                    root: np.ndarray | None = None) -> np.ndarray | None:
    """The exact minimiser of the quadratic on a face of x: S = Q T Q^T with Q the eigenvectors of S's `rank`
    largest eigenvalues (T symmetric, free), eta free where it is positive, and eta + tr S = gamma where the
    cap is active. One small linear (KKT) system; the barrier's last digits, which round-off limits once
    rho |A|^2 dwarfs tau (control1 at rho = 3e4: a Frank-Wolfe gap stuck at the predicted decrease), are not
    needed. None where the face's point leaves the set (T not PSD, eta < 0, trace above the cap). `root` R,
    if given, has hess = R^T R on the face's coordinates (sqrt(rho) F): the system is then solved from R p's
    SVD, without forming p^T hess p (truss5: 700 face coordinates, 208 constraints; the polish was half of the
    interior-point method's time)."""
    lam, vec, _ = maps.ranked_eigh(maps.smat(x[1:]).copy())
    top = max(float(lam.max()), float(x[0]) if use_eta else 0.0, 1e-300)
    q_face = vec[:, vec.shape[1] - rank:]
    k = q_face.shape[1]
    if k == 0:
        return None
    d = hess.shape[0]
    free_eta = use_eta and x[0] > 1e-6 * top
    p = _face_basis(q_face, maps, d, free_eta)
    active = capped and gamma - float(trace_row @ x) <= 1e-6 * gamma
    try:
        if root is not None:
            g_face = np.asarray((p.T @ root.T).T)
        else:   # a root of p^T hess p from its eigendecomposition
            values, vectors = np.linalg.eigh(np.asarray(p.T @ (p.T @ hess).T))
            g_face = np.sqrt(np.maximum(values, 0.0))[:, None] * vectors.T
        z = _quadratic_minimiser(g_face, p.T @ q, p.T @ trace_row if active else None, gamma)
    except np.linalg.LinAlgError:   # LAPACK's SVD gave up on an ill-conditioned face (control3): no polish
        return None
    out = p @ z
    if not np.isfinite(out).all():
        return None
    if out[0] < 0 or float(trace_row @ out) > gamma * (1 + 1e-12):
        return None
    if maps.groups is None:
        lam_out = np.linalg.eigvalsh(maps.smat(out[1:]).copy())
    else:
        lam_out = np.sort(np.concatenate([np.linalg.eigvalsh(m).ravel() for m in maps.stack(out[1:])]))
    if lam_out[0] < -1e-12 * max(float(lam_out[-1]), 1e-300):
        return None
    return out


def _face_basis(q_face: np.ndarray, maps: SvecMaps, d: int, free_eta: bool):
    """The face's coordinates as columns of x (d x face pairs, then eta's unit column where eta is free): for
    each pair (a, b) of face vectors, svec(Q E_ab Q^T). Where S is block-diagonal the face is too (T only within
    blocks; truss2: 40 face vectors gave an 820 x 820 system where the blocks' own pairs number ~60), and each
    column lives on its own block's coordinates: a sparse matrix, built block by block (truss5 whole: the dense
    one, 1816 x 1815, was most of the polish's time)."""
    k = q_face.shape[1]
    extra = 1 if free_eta else 0
    if maps.blocks is None:
        sub = SvecMaps(k)
        basis = np.zeros((sub.size, k, k))
        basis[np.arange(sub.size), sub.a, sub.b] = sub.inv_weight
        basis[np.arange(sub.size), sub.b, sub.a] = sub.inv_weight
        lifted = np.matmul(np.matmul(q_face, basis), q_face.T)          # Q E_p Q^T for each basis matrix E_p
        p = np.zeros((d, sub.size + extra))
        p[1:, :sub.size] = np.array([maps.svec(m_).copy() for m_ in lifted]).T
        if free_eta:
            p[0, -1] = 1.0
        return p
    face_block = maps.blocks[np.abs(q_face).argmax(axis=0)]
    sub = SvecMaps(k, face_block)
    pair_block, coord_block = face_block[sub.a], maps.blocks[maps.a]
    rows, cols, vals = [], [], []
    for block in np.unique(pair_block):
        coords, pairs = np.flatnonzero(coord_block == block), np.flatnonzero(pair_block == block)
        qa, qb = q_face[maps.a[coords]], q_face[maps.b[coords]]
        a, b = sub.a[pairs], sub.b[pairs]
        half = np.where(a == b, 0.5, 1.0) * sub.inv_weight[pairs]
        entries = (qa[:, a] * qb[:, b] + qa[:, b] * qb[:, a]) * half * maps.weight[coords, None]
        rows.append(np.repeat(1 + coords, pairs.size)), cols.append(np.tile(pairs, coords.size))
        vals.append(entries.ravel())
    if free_eta:
        rows.append(np.array([0])), cols.append(np.array([sub.size])), vals.append(np.array([1.0]))
    return scipy.sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                   shape=(d, sub.size + extra))


def _quadratic_minimiser(g: np.ndarray, q: np.ndarray, t: np.ndarray | None, gamma: float) -> np.ndarray:
    """The least-norm minimiser z of z^T G^T G z / 2 - q^T z (the part of q outside G's row space ignored, as
    least squares on G^T G would), subject to t^T z = gamma when t is given: then z = z_t + N w, z_t the
    least-norm point of the plane and N its directions (a Householder reflection's last columns), and the
    same unconstrained problem in w for G N. From G's SVD, which squares no condition number."""
    if t is None or not np.any(t):
        _, sv, vt = np.linalg.svd(g, full_matrices=False)
        # the cut least squares on G^T G makes (its singular values are G's squared): eps k sigma_max^2
        keep = sv > math.sqrt(np.finfo(float).eps * g.shape[1]) * (float(sv[0]) if sv.size else 0.0)
        return vt[keep].T @ ((vt[keep] @ q) / sv[keep] ** 2)
    norm = float(np.linalg.norm(t))
    z_t = t * (gamma / norm ** 2)
    u = t.copy()
    u[0] += math.copysign(norm, t[0])   # H = I - 2 u u^T / u^T u maps t onto a multiple of e_1
    scale = 2.0 / float(u @ u)

    def reflect(v: np.ndarray) -> np.ndarray:   # H v for v a vector, or the rows of v reflected: v H
        return v - scale * np.outer(v @ u, u) if v.ndim == 2 else v - scale * u * float(u @ v)

    residual = q - g.T @ (g @ z_t)
    w = _quadratic_minimiser(reflect(g)[:, 1:], reflect(residual)[1:], None, gamma)
    return z_t + reflect(np.concatenate([[0.0], w]))


# Where S is block-diagonal (maps.groups: several PSD blocks, or controller.full_model's whole blocks) the
# barrier's products are taken block by block, batched per block order: truss5 whole (33 blocks of order 10,
# r = 331) spent more time in r x r inverses, products and generalised eighs than in its Newton systems.

def _inverse(s: np.ndarray, maps: SvecMaps) -> np.ndarray:
    """S^{-1}, symmetrised."""
    if maps.groups is None:
        w = np.linalg.inv(s)
    else:
        w = maps.from_blocks([np.linalg.inv(m) for m in maps.blocks_of(s)])
    return (w + w.T) / 2


def _congruence(w: np.ndarray, v: np.ndarray, maps: SvecMaps) -> np.ndarray:
    """svec(W smat(v) W), for each row of v (..., size) if it has several."""
    if maps.groups is not None:
        return maps.unstack([np.matmul(np.matmul(wb, m), wb) for wb, m in zip(maps.blocks_of(w), maps.stack(v))],
                            np.zeros(v.shape))
    mats = np.zeros(v.shape[:-1] + (maps.r, maps.r))
    half = v * maps.inv_weight
    mats[..., maps.a, maps.b] = half
    mats[..., maps.b, maps.a] = half
    return np.matmul(np.matmul(w, mats), w)[..., maps.a, maps.b] * maps.weight


def _generalised_eigenvalues(dv: np.ndarray, s: np.ndarray, maps: SvecMaps) -> np.ndarray:
    """The eigenvalues mu of (smat(dv), S), S positive definite (LinAlgError where it is not), ascending."""
    if maps.groups is None:
        return scipy.linalg.eigh(maps.smat(dv).copy(), s, eigvals_only=True)
    mu = []
    for sb, db in zip(maps.blocks_of(s), maps.stack(dv)):
        inv_chol = np.linalg.inv(np.linalg.cholesky(sb))   # L^{-1} dS L^{-T} has the same eigenvalues
        mu.append(np.linalg.eigvalsh(np.matmul(np.matmul(inv_chol, db), np.swapaxes(inv_chol, 1, 2))).ravel())
    return np.sort(np.concatenate(mu))


def _b0_inverse(rows: np.ndarray, s: np.ndarray, eta: float, x_lp: np.ndarray, maps: SvecMaps) -> np.ndarray:
    """B0^{-1} applied to each row (k x d): (eta^2 v_0, svec(S smat(v) S), x_lp^2 v_lp), batched."""
    ds = maps.size
    out = np.empty_like(rows)
    out[:, 0] = eta * eta * rows[:, 0]
    out[:, 1:1 + ds] = _congruence(s, rows[:, 1:1 + ds], maps)
    out[:, 1 + ds:] = rows[:, 1 + ds:] * x_lp ** 2
    return out


def _cholesky(s: np.ndarray) -> tuple[np.ndarray, bool]:
    chol, info = scipy.linalg.lapack.dpotrf(s, lower=True)
    return chol, info == 0


def _inside(x0: np.ndarray, maps: SvecMaps, gamma: float, use_eta: bool) -> np.ndarray:
    """x0 with S's eigenvalues and the LP entries clipped at 0 and the trace scaled into the cap (a point of the
    closed set)."""
    ds = maps.size
    lam, vec = np.linalg.eigh(maps.smat(x0[1:1 + ds]))
    lam = np.maximum(lam, 0.0)
    x_lp = np.maximum(x0[1 + ds:], 0.0)
    eta = max(float(x0[0]), 0.0) if use_eta else 0.0
    total = eta + float(lam.sum()) + float(x_lp.sum())
    if total > gamma:
        lam, eta, x_lp = lam * gamma / total, eta * gamma / total, x_lp * gamma / total
    out = np.zeros_like(x0)
    out[0] = eta
    out[1:1 + ds] = maps.svec((vec * lam) @ vec.T)
    out[1 + ds:] = x_lp
    return out
