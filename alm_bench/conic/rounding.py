"""Goemans-Williamson hyperplane rounding of a low-rank factor V (X ~ V V^T), then greedy 1-flip search.

cut(s) = 1/4 s^T L s = sum over edges w_ij [s_i != s_j]. Flipping vertex i changes it by s_i (W s)_i
(W has a zero diagonal), so the local search keeps W s up to date and flips the best vertex while any
flip gains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp


def cut_value(adjacency: sp.csr_matrix, signs: np.ndarray) -> float:
    """sum_{i<j} w_ij (1 - s_i s_j) / 2."""
    return float(0.25 * (adjacency.sum() - signs @ (adjacency @ signs)))


def local_search(adjacency: sp.csr_matrix, signs: np.ndarray, max_flips: int | None = None) -> np.ndarray:
    """Greedy best-improvement 1-flip search: ends at a cut that no single vertex move improves."""
    s = signs.astype(np.float64).copy()
    ws = adjacency @ s
    csc = adjacency.tocsc()
    limit = max_flips if max_flips is not None else 10 * s.size
    for _ in range(limit):
        gain = s * ws
        i = int(np.argmax(gain))
        if gain[i] <= 1e-12:
            break
        lo, hi = csc.indptr[i], csc.indptr[i + 1]
        ws[csc.indices[lo:hi]] -= 2 * s[i] * csc.data[lo:hi]
        s[i] = -s[i]
    return s


def goemans_williamson(adjacency: sp.csr_matrix, factor: np.ndarray, *, trials: int = 64, seed: int = 0,
                       local_search: bool = True) -> tuple[np.ndarray, float]:
    """Best cut over `trials` random hyperplanes through the rows of `factor` (seeded), each polished by
    the 1-flip search if asked. Returns the partition (+1/-1 per vertex) and its cut value."""
    rng = np.random.default_rng(seed)
    signs = np.sign(factor @ rng.standard_normal((factor.shape[1], trials)))
    signs[signs == 0] = 1.0
    best, best_value = None, -np.inf
    search = globals()["local_search"]
    for t in range(trials):
        s = search(adjacency, signs[:, t]) if local_search else signs[:, t]
        value = cut_value(adjacency, s)
        if value > best_value:
            best, best_value = s, value
    return best.astype(np.int8), best_value


def write_partition(path: Path, signs: np.ndarray) -> None:
    """One +1 or -1 per line, vertex 1 first."""
    Path(path).write_text("\n".join("1" if s > 0 else "-1" for s in signs) + "\n")
