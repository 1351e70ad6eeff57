"""A fixed sparse matrix applied to torch tensors.

On the CPU the product goes through scipy (torch's CPU sparse kernels measured 5-30x slower on G-set
graphs); on CUDA through a torch CSR tensor (cuSPARSE). Inputs and outputs are torch tensors either way.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor


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
            self._on_device[device] = torch.sparse_csr_tensor(
                torch.from_numpy(m.indptr).to(device), torch.from_numpy(m.indices).to(device),
                torch.from_numpy(m.data).to(device), size=m.shape, dtype=torch.float64)
        return self._on_device[device]

    def mm(self, v: Tensor) -> Tensor:
        if v.device.type == "cpu":
            return torch.from_numpy(np.asarray(self.matrix @ v.detach().numpy()))
        return self._tensor(v.device) @ v
