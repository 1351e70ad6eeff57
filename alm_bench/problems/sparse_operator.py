"""A fixed sparse matrix applied to torch tensors.

On the CPU the product goes through scipy (torch's CPU sparse kernels measured 5-30x slower on G-set
graphs); on CUDA through a torch CSR tensor (cuSPARSE); alm_bench/kernels.py decides. Inputs and outputs
are torch tensors either way.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from alm_bench.kernels import numpy_path


class SparseOperator:
    def __init__(self, matrix: sp.spmatrix) -> None:
        self.matrix = sp.csr_matrix(matrix, dtype=np.float64)
        self._on_device: dict[torch.device, Tensor] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def _tensor(self, device: torch.device) -> Tensor:
        if device not in self._on_device:
            m = self.matrix
            self._on_device[device] = csr_tensor(m.indptr, m.indices, torch.from_numpy(m.data), m.shape, device)
        return self._on_device[device]

    def mm(self, v: Tensor) -> Tensor:
        if numpy_path(v.device):
            return torch.from_numpy(np.asarray(self.matrix @ v.detach().numpy()))
        return self._tensor(v.device) @ v


def csr_tensor(indptr: np.ndarray, indices: np.ndarray, data: Tensor, shape: tuple[int, int],
               device: torch.device) -> Tensor:
    """A float64 torch CSR tensor on `device`. The index arrays come from scipy, which keeps them valid, so
    torch's invariant checks are off; its "CSR support is in beta" warning would print in every GPU run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(torch.from_numpy(indptr).to(device), torch.from_numpy(indices).to(device),
                                       data.to(device=device, dtype=torch.float64), size=shape,
                                       dtype=torch.float64, check_invariants=False)
