"""A sparse symmetric matrix in CSR form applied to torch tensors: the cost matrix C and each slack C - A^*(y).

On the CPU the product goes through scipy (torch's CPU sparse kernels measured 5-30x slower on G-set
graphs); on any other device through a torch CSR tensor (cuSPARSE); alm_bench/conic/kernels.py decides.
Inputs and outputs are torch tensors either way.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from alm_bench.conic.kernels import numpy_path


class CSROperator:
    """An n x n CSR matrix whose values are a torch tensor (on the problem's device); the scipy matrix and the
    torch CSR tensor of each device are built on first use and kept."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: Tensor, n: int) -> None:
        self.indptr, self.indices, self.data, self.n = indptr, indices, data, n
        self._scipy: sp.csr_matrix | None = None
        self._on_device: dict[torch.device, Tensor] = {}

    @classmethod
    def from_scipy(cls, matrix: sp.spmatrix) -> "CSROperator":
        m = sp.csr_matrix(matrix, dtype=np.float64)
        op = cls(m.indptr, m.indices, torch.from_numpy(m.data), m.shape[0])
        op._scipy = m
        return op

    @property
    def matrix(self) -> sp.csr_matrix:
        return self.scipy()

    def scipy(self) -> sp.csr_matrix:
        if self._scipy is None:
            self._scipy = sp.csr_matrix((self.data.detach().cpu().numpy(), self.indices, self.indptr),
                                        shape=(self.n, self.n))
        return self._scipy

    def mm(self, v: Tensor) -> Tensor:
        if numpy_path(v.device):
            return torch.from_numpy(np.asarray(self.scipy() @ v.detach().numpy()))
        if v.device not in self._on_device:
            self._on_device[v.device] = csr_tensor(self.indptr, self.indices, self.data, (self.n, self.n), v.device)
        return self._on_device[v.device] @ v

    def gershgorin(self) -> float:
        """max_i sum_j |S_ij|: a bound on the spectral radius, the scale for eigen-solver tolerances."""
        return float(np.abs(self.scipy()).sum(axis=1).max())


def csr_tensor(indptr: np.ndarray, indices: np.ndarray, data: Tensor, shape: tuple[int, int],
               device: torch.device) -> Tensor:
    """A float64 torch CSR tensor on `device`. The index arrays come from scipy, which keeps them valid, so
    torch's invariant checks are off; its "CSR support is in beta" warning would print in every GPU run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(torch.from_numpy(indptr).to(device), torch.from_numpy(indices).to(device),
                                       data.to(device=device, dtype=torch.float64), size=shape,
                                       dtype=torch.float64, check_invariants=False)
