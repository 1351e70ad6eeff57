"""Classifier networks: the CIFAR ResNet-18 and a small CNN for quick runs and tests."""

from __future__ import annotations

from torch import nn

from alm_bench.errors import ConfigError

MODELS = ("resnet18", "small_cnn")


def cifar_resnet18(num_classes: int) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem: a 3x3 stride-1 first conv and no max-pool.

    The ImageNet stem (7x7 stride 2, then max-pool) would shrink a 32x32 image to 8x8 before the
    first residual block and cost several points of accuracy.
    """
    from torchvision.models import resnet18

    model = resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def small_cnn(num_classes: int, width: int = 32) -> nn.Module:
    """Three conv-BN-ReLU blocks (width, 2 width, 4 width), two max-pools, global average pool, linear."""
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(3, width), nn.MaxPool2d(2),
        *block(width, 2 * width), nn.MaxPool2d(2),
        *block(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes),
    )


def build_model(name: str, num_classes: int, width: int) -> nn.Module:
    if name == "resnet18":
        return cifar_resnet18(num_classes)
    if name == "small_cnn":
        return small_cnn(num_classes, width)
    raise ConfigError(f"problem.model must be one of {', '.join(MODELS)}, got {name!r}")
