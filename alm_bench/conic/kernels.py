"""Which kernels the conic solvers' tensor work goes through.

CPU tensors go through numpy and scipy: OpenBLAS ran the eigen-oracle's thin products 1.6x faster than
torch's CPU build, scipy.sparse the graph products 5-30x faster, and numpy's A^T A takes the symmetric
(syrk) path. Tensors on any other device go through torch ops (cuBLAS, cuSPARSE): the device=cuda path.

`torch_kernels()` sends CPU tensors through the torch branch as well, so that the code a GPU runs is also
run, and tested, on machines without one (CI never has a GPU). Like torch.backends' switches it is a
process-wide setting, read where the work is dispatched.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

_numpy_on_cpu = True


def numpy_path(device: torch.device) -> bool:
    """True when work on `device` goes through numpy/scipy rather than torch."""
    return _numpy_on_cpu and device.type == "cpu"


@contextmanager
def torch_kernels() -> Iterator[None]:
    """Within this block CPU tensors take the torch (device=cuda) branch of every dispatch."""
    global _numpy_on_cpu
    previous, _numpy_on_cpu = _numpy_on_cpu, False
    try:
        yield
    finally:
        _numpy_on_cpu = previous
