"""Resolve the `device` config choice to a torch.device."""

from __future__ import annotations

import torch

from alm_bench.errors import ConfigError

KNOWN = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit choice must be available."""
    base = str(name).split(":")[0]
    if base not in KNOWN:
        raise ConfigError(f"device.name must be one of {', '.join(KNOWN)}, got {name!r}")
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for, but torch sees no CUDA device (use device=auto or device=cpu)")
    if base == "mps" and not _mps_available():
        raise ConfigError("device=mps was asked for, but this torch build has no MPS backend available")
    return torch.device(name)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
