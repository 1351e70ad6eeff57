"""Image data for the classifier: CIFAR-10/100 through torchvision, an offline synthetic set, batching.

Images stay uint8 (N, 3, H, W) on the training device; batches are augmented there (random crop with
4-pixel zero padding, horizontal flip) and normalised. Batch `step` of a run is a pure function of
(seed, step), so a resumed run draws exactly the batches the uninterrupted one would have drawn and
every DDP rank takes its own slice of the same global batch without communicating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from alm_bench.errors import UserError

CIFAR_STATS = {  # per-channel mean and std of the training images
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


@dataclass
class ImageSet:
    images: Tensor  # uint8 (N, 3, H, W)
    labels: Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> "ImageSet":
        return ImageSet(self.images.to(device), self.labels.to(device))


@dataclass
class ImageData:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to(self, device: torch.device) -> "ImageData":
        return ImageData(self.train.to(device), self.val.to(device), self.test.to(device), self.num_classes,
                         self.mean, self.std)


CIFAR_FOLDERS = {"cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz"),
                 "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz")}


def check_cifar_present(name: str, root: str | Path) -> None:
    """A cheap look for the extracted folder (torchvision's md5 check runs when the data is loaded)."""
    folder_name, archive = CIFAR_FOLDERS[name]
    folder = Path(root).expanduser().resolve() / folder_name
    if not folder.is_dir():
        raise UserError(f"problem.root: {name} not found in {folder}; run with problem.download=true to fetch it, "
                        f"or extract {archive} into {folder.parent}")


def _torchvision_split(name: str, root: Path, train: bool, download: bool) -> ImageSet:
    from torchvision import datasets  # torchvision pulls in PIL etc.: only when real data is asked for

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    folder = root / cls.base_folder
    try:
        ds = cls(root=str(root), train=train, download=download)
    except RuntimeError:  # torchvision's "Dataset not found or corrupted"
        if folder.is_dir():
            raise UserError(f"problem.root: {name} in {folder} is incomplete or corrupted (md5 check failed); "
                            f"delete that folder and run with problem.download=true, or extract a fresh "
                            f"{cls.filename} into {root}") from None
        raise UserError(f"problem.root: {name} not found in {folder}; run with problem.download=true to fetch it "
                        f"from {cls.url}, or extract {cls.filename} into {root}") from None
    except OSError as err:  # no network, proxy, disk full: one line, never a download traceback
        raise UserError(f"problem.download: could not fetch {name} from {cls.url} into {root} "
                        f"({type(err).__name__}: {err}); download {cls.filename} by hand and extract it "
                        f"into {root}") from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW, still uint8
    return ImageSet(images, torch.as_tensor(ds.targets, dtype=torch.long))


def load_cifar(name: str, root: str | Path, download: bool) -> tuple[ImageSet, ImageSet, int]:
    """(train, test, number of classes) of CIFAR-10 or CIFAR-100 from `root`."""
    root = Path(root).expanduser().resolve()
    train = _torchvision_split(name, root, True, download)
    test = _torchvision_split(name, root, False, download)
    return train, test, 100 if name == "cifar100" else 10


def make_synthetic(num_classes: int, train_size: int, test_size: int, image_size: int, noise: float,
                   seed: int) -> tuple[ImageSet, ImageSet]:
    """Class templates (smooth random colour patterns) plus pixel noise: learnable in a few epochs, offline.

    The instance depends only on `seed`, never on the run's seed, so paired runs see the same data.
    """
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, 3, 4, 4, generator=gen)
    templates = torch.nn.functional.interpolate(coarse, size=image_size, mode="bilinear", align_corners=False)

    def draw(n: int) -> ImageSet:
        labels = torch.randint(num_classes, (n,), generator=gen)
        shift = torch.randint(-2, 3, (n, 2), generator=gen)  # small translations so augmentation matters
        images = templates[labels] + noise * torch.randn(n, 3, image_size, image_size, generator=gen)
        images = torch.stack([img.roll(tuple(s.tolist()), dims=(1, 2)) for img, s in zip(images, shift)])
        return ImageSet((images.clamp(0, 1) * 255).round().to(torch.uint8), labels)

    return draw(train_size), draw(test_size)


def split_train_val(full: ImageSet, val_fraction: float, split_seed: int) -> tuple[ImageSet, ImageSet]:
    """A random held-out validation split drawn from its own seed (the same for every run seed)."""
    n_val = int(round(val_fraction * len(full)))
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(split_seed))
    val, train = order[:n_val], order[n_val:]
    return ImageSet(full.images[train], full.labels[train]), ImageSet(full.images[val], full.labels[val])


def channel_stats(images: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.float().div_(255)
    return tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).tolist())


def normalize(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    m = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255 - m) / s


def augment(images: Tensor, gen: torch.Generator, pad: int = 4) -> Tensor:
    """Random crop of the zero-padded image (per sample) and a random horizontal flip, batched."""
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen).to(images.device)
    rows = (torch.arange(h, device=images.device) + dy)[:, None, :, None]  # (n, 1, h, 1)
    cols = (torch.arange(w, device=images.device) + dx)[:, None, None, :]  # (n, 1, 1, w)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    chans = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    out = padded[batch, chans, rows, cols]
    flip = (torch.rand(n, generator=gen) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], out.flip(3), out)


class BatchStream:
    """Global batch `step` (1-based) of a seeded epoch-wise shuffle; each rank gets its slice of it."""

    def __init__(self, data: ImageSet, batch_size: int, seed: int, augment: bool, mean: tuple[float, ...],
                 std: tuple[float, ...], rank: int = 0, world_size: int = 1) -> None:
        if batch_size > len(data):
            raise UserError(f"problem.batch_size={batch_size} is larger than the training split ({len(data)} images)")
        if batch_size % world_size:
            raise UserError(f"problem.batch_size={batch_size} must be divisible by the number of processes "
                            f"({world_size})")
        self.data, self.batch_size, self.seed, self.augment = data, batch_size, seed, augment
        self.mean, self.std, self.rank, self.world_size = mean, std, rank, world_size
        self.steps_per_epoch = len(data) // batch_size  # the last partial batch is dropped
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def epoch_of(self, step: int) -> int:
        return (step - 1) // self.steps_per_epoch

    def is_epoch_end(self, step: int) -> bool:
        return step % self.steps_per_epoch == 0

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        epoch, index = divmod(step - 1, self.steps_per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._order = epoch, torch.randperm(len(self.data), generator=gen)
        local = self.batch_size // self.world_size
        start = index * self.batch_size + self.rank * local
        idx = self._order[start:start + local].to(self.data.labels.device)
        images, labels = self.data.images[idx], self.data.labels[idx]
        if self.augment:
            gen = torch.Generator().manual_seed((self.seed * 1_000_003 + step) * 31 + self.rank)
            images = augment(images, gen)
        return normalize(images, self.mean, self.std), labels


def eval_batches(data: ImageSet, batch_size: int, mean: tuple[float, ...], std: tuple[float, ...], rank: int = 0,
                 world_size: int = 1):
    """This rank's share of `data`, in order, normalised, without augmentation."""
    share = math.ceil(len(data) / world_size)
    lo, hi = rank * share, min(len(data), (rank + 1) * share)
    for start in range(lo, hi, batch_size):
        end = min(hi, start + batch_size)
        yield normalize(data.images[start:end], mean, std), data.labels[start:end]
