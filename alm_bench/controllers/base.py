"""The one state protocol of every controller and solver: `state_dict()` / `load_state_dict()`, written once.

As in torch.optim.lr_scheduler.LRScheduler, a controller's checkpointable state is declared, not
hand-serialised: its whole mutable state is one dataclass in `self.state`, and `state_children` names the
objects it owns that have a state_dict of their own (a scheduler, a wrapped controller), each saved under its
key. Everything else on the controller is configuration, rebuilt from the run's config on resume.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

import torch


def _copy(value: Any) -> Any:
    """A checkpoint never aliases live state: tensors as CPU copies, containers deep-copied."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    return copy.copy(value)


class StateDictMixin:
    state: Any = None                                  # a dataclass instance, or None when all state is in children
    state_children: ClassVar[dict[str, str]] = {}      # checkpoint key -> attribute with its own state_dict()

    def state_dict(self) -> dict[str, Any]:
        out = ({} if self.state is None else
               {f.name: _copy(getattr(self.state, f.name)) for f in dataclasses.fields(self.state)})
        for key, attribute in self.state_children.items():
            out[key] = _copy(getattr(self, attribute).state_dict())
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        own = dict(state)
        for key, attribute in self.state_children.items():
            getattr(self, attribute).load_state_dict(own.pop(key))
        if self.state is not None:
            self.state = type(self.state)(**{k: _copy(v) for k, v in own.items()})
