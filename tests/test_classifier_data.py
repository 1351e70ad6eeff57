"""Classifier data: CIFAR in its real pickle layout through torchvision's loader, the missing-data error,
the synthetic set, the split, batching and augmentation."""

from __future__ import annotations

import torch
import pytest

from alm_bench.errors import UserError
from alm_bench.problems.budget import SpectralBudget
from alm_bench.problems.classifier import BudgetClassifier
from alm_bench.problems.datasets import BatchStream, ImageSet, augment, split_train_val
from conftest import run_cli


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_tiny_cifar_goes_through_the_real_torchvision_loader(tiny_cifar, name, classes):
    root = tiny_cifar(name, per_file=20)
    problem = BudgetClassifier(dataset=name, root=str(root), budget=SpectralBudget(), val_fraction=0.2)
    data = problem.load_data()
    assert data.num_classes == classes
    assert len(data.train) == 80 and len(data.val) == 20 and len(data.test) == 20
    assert data.train.images.dtype == torch.uint8 and data.train.images.shape[1:] == (3, 32, 32)
    assert int(data.train.labels.max()) < classes


def test_missing_cifar_is_one_line_saying_where_and_how(tmp_path):
    with pytest.raises(UserError) as err:  # at build time, before any run folder or tracker
        BudgetClassifier(dataset="cifar10", root=str(tmp_path / "nowhere"), budget=SpectralBudget())
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message and "problem.download=true" in message


@pytest.mark.slow
def test_cli_without_cifar_exits_2_with_one_line(tmp_path, outputs):
    out = run_cli("train", "problem=cifar10", "controller=ema_alm", "device=cpu",
                  f"problem.root={tmp_path / 'nowhere'}")
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("alm-bench: error:")]
    assert len(errors) == 1 and "problem.download=true" in errors[0], out.stderr
    assert "Traceback" not in out.stderr and "failed" not in out.stderr  # no run was started


def test_corrupted_cifar_is_one_line_too(tiny_cifar):
    root = tiny_cifar("cifar10")
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"truncated")
    with pytest.raises(UserError) as err:
        BudgetClassifier(dataset="cifar10", root=str(root), budget=SpectralBudget()).load_data()
    assert "\n" not in str(err.value) and "problem.download=true" in str(err.value)


def test_synthetic_set_is_fixed_by_its_own_seed():
    a = BudgetClassifier(dataset="synthetic", synthetic={"train_size": 100, "test_size": 20}).load_data()
    b = BudgetClassifier(dataset="synthetic", synthetic={"train_size": 100, "test_size": 20}).load_data()
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)


def test_split_is_disjoint_and_seeded():
    full = ImageSet(torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1).expand(50, 3, 2, 2).clone(),
                    torch.arange(50))
    train, val = split_train_val(full, 0.2, split_seed=7)
    assert len(val) == 10 and set(train.labels.tolist()).isdisjoint(val.labels.tolist())
    assert torch.equal(val.labels, split_train_val(full, 0.2, split_seed=7)[1].labels)
    assert not torch.equal(val.labels, split_train_val(full, 0.2, split_seed=8)[1].labels)


def test_augment_crops_and_flips_within_the_padded_image():
    images = torch.randint(0, 255, (64, 3, 8, 8), dtype=torch.uint8)
    out = augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert not torch.equal(out, images)
    same = augment(images, torch.Generator().manual_seed(0))
    assert torch.equal(out, same)


def test_batches_depend_only_on_seed_and_step_and_ranks_split_the_global_batch():
    data = ImageSet(torch.randint(0, 255, (40, 3, 4, 4), dtype=torch.uint8), torch.arange(40))
    stats = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    one = BatchStream(data, 8, seed=3, augment=False, mean=stats[0], std=stats[1])
    again = BatchStream(data, 8, seed=3, augment=False, mean=stats[0], std=stats[1])
    assert torch.equal(one.batch(7)[1], again.batch(7)[1])  # no hidden state: step 7 straight away
    epoch = torch.cat([one.batch(s)[1] for s in range(1, 6)])
    assert sorted(epoch.tolist()) == list(range(40))  # an epoch sees every image once
    ranks = [BatchStream(data, 8, 3, False, stats[0], stats[1], rank=r, world_size=2) for r in (0, 1)]
    assert torch.equal(torch.cat([r.batch(2)[1] for r in ranks]), one.batch(2)[1])


def test_bad_problem_fields_are_one_line_errors():
    with pytest.raises(UserError, match="problem.model"):
        BudgetClassifier(model="vgg")
    with pytest.raises(UserError, match="problem.precision"):
        BudgetClassifier(precision="int8")
    with pytest.raises(UserError, match="problem.budget.bound"):
        SpectralBudget(bound="loose")
