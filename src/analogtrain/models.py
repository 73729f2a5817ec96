"""Digital reference models (papers.md §3(d), §5(e)) and ``build_model``, which converts them to analog.

Every model is initialised from its ``seed`` through one ``torch.Generator`` (torch's default
Linear/Conv2d init: kaiming-uniform with a = sqrt(5), bias U(±1/sqrt(fan_in))), never the global RNG.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError, check_range
from .nn import AnalogLayerConfig, convert

MODELS = ("fcn", "lenet5", "resnet20")
INPUT_SHAPES = {"fcn": (1, 28, 28), "lenet5": (1, 28, 28), "resnet20": (3, 32, 32)}  # channels, height, width


def _seeded(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialise every Linear/Conv2d of ``model`` in module order from a generator seeded by ``seed``."""
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=g)
                if m.bias is not None:
                    bound = 1 / math.sqrt(m.weight[0].numel())
                    nn.init.uniform_(m.bias, -bound, bound, generator=g)
    return model


def fcn(seed: int = 0) -> nn.Module:
    """3-FC MNIST network 784-256-128-10, sigmoid hidden units, log-softmax output (papers.md §3(d), §1.5)."""
    return _seeded(nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256), nn.Sigmoid(),
        nn.Linear(256, 128), nn.Sigmoid(),
        nn.Linear(128, 10), nn.LogSoftmax(dim=1),
    ), seed)


def lenet5(seed: int = 0) -> nn.Module:
    """LeNet-5-style MNIST CNN (papers.md §3(d)): 28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4, 32·4·4 = 512."""
    return _seeded(nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.Tanh(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(512, 128), nn.Tanh(),
        nn.Linear(128, 10), nn.LogSoftmax(dim=1),
    ), seed)


class _PadShortcut(nn.Module):
    """He et al.'s option-A shortcut: subsample by ``stride`` and zero-pad the new channels.

    Parameter-free, so the convertible layers of a ResNet are exactly its 3×3 convs and the final FC.
    """

    def __init__(self, extra_channels: int, stride: int):
        super().__init__()
        self.extra, self.stride = extra_channels, stride

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        lo = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, lo, self.extra - lo))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = _PadShortcut(cout - cin, stride) if (stride != 1 or cin != cout) else nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNetCIFAR(nn.Module):
    """CIFAR ResNet (He et al. 2016 §4.2): 3×3 stem, 3 stages of n basic blocks (widths w, 2w, 4w;
    stride 2 at stages 2 and 3), global average pool, FC. Depth = 6n + 2; option-A shortcuts."""

    def __init__(self, depth: int = 20, num_classes: int = 10, width: int = 16):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ConfigError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, ...), got {depth}")
        check_range("num_classes", num_classes, 1)
        check_range("width", width, 1)
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks, cin = [], width
        for stage, cout in enumerate((width, 2 * width, 4 * width)):
            for i in range(n):
                blocks.append(_BasicBlock(cin, cout, 2 if (stage > 0 and i == 0) else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet_cifar(depth: int = 20, num_classes: int = 10, width: int = 16, seed: int = 0) -> nn.Module:
    """A small CIFAR ResNet (papers.md §5(e) CIFAR runs); ``depth=20`` is ResNet-20 (0.27 M weights)."""
    return _seeded(ResNetCIFAR(depth, num_classes, width), seed)


_BUILDERS = {"fcn": fcn, "lenet5": lenet5, "resnet20": lambda seed: resnet_cifar(20, seed=seed)}


def build_model(name: str, analog: AnalogLayerConfig | None = None, layers=None, seed: int = 0) -> nn.Module:
    """The reference model ``name`` (one of ``MODELS``) seeded by ``seed``; with ``analog``, its
    Linear/Conv2d layers (all, or the qualified names in ``layers``) converted to analog layers."""
    if name not in _BUILDERS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    model = _BUILDERS[name](seed)
    if analog is None:
        if layers is not None:
            raise ConfigError("layers is given but analog is None (nothing to convert)")
        return model
    return convert(model, analog, layers, seed=seed)
