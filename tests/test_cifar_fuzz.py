"""Damaged CIFAR-format batches: whatever the damage, loading through torchvision's real CIFAR10 class
gives one UserError line naming the data folder (torchvision's md5 check sees it before any unpickling)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alm_bench.errors import UserError
from alm_bench.problems.datasets import load_cifar

FILES = ["data_batch_1", "data_batch_3", "data_batch_5", "test_batch", "batches.meta"]


@pytest.fixture
def intact(tiny_cifar) -> Path:
    root = tiny_cifar("cifar10", per_file=4)
    train, test, classes = load_cifar("cifar10", root, download=False)  # the intact set loads
    assert len(train) == 20 and len(test) == 4 and classes == 10
    return root


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(FILES), how=st.sampled_from(["truncate", "flip", "append", "empty", "directory"]),
       where=st.floats(0, 1))
def test_any_damaged_batch_is_one_line(intact, name, how, where):
    root = Path(tempfile.mkdtemp()) / "data"
    shutil.copytree(intact, root)
    target = root / "cifar-10-batches-py" / name
    raw = bytearray(target.read_bytes())
    at = min(int(where * len(raw)), len(raw) - 1)
    if how == "truncate":
        raw = raw[:at]
    elif how == "flip":
        raw[at] ^= 0x5A
    elif how == "append":
        raw += b"\x80\x04garbage"
    elif how == "empty":
        raw = bytearray()
    if how == "directory":
        target.unlink()
        target.mkdir()
    else:
        target.write_bytes(bytes(raw))
    with pytest.raises(UserError) as err:
        load_cifar("cifar10", root, download=False)
    message = str(err.value)
    assert "\n" not in message and str(root / "cifar-10-batches-py") in message
    assert "corrupted" in message or "not found" in message
