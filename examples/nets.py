"""Example networks for a bslab preset: ``"model": {"file": "nets.py", "factory": "tiny_cnn"}``.

bslab calls ``factory(input_shape, num_classes, **kwargs)``: ``input_shape`` is one sample's
shape as the data has it (here 1×8×8), ``num_classes`` the number of classes in the data.
Naming this file in a preset runs it, like any Python file you run yourself.
"""

from __future__ import annotations

from torch import nn


def tiny_cnn(input_shape: tuple[int, ...], num_classes: int, width: int = 16) -> nn.Module:
    """Two 3×3 convolutions and a linear read-out; no batch norm, so seeds can be stacked."""
    channels, height, side = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(width * (height // 2) * (side // 2), num_classes),
    )


def batch_norm_cnn(input_shape: tuple[int, ...], num_classes: int, width: int = 16) -> nn.Module:
    """The same with batch norm: it trains, but its seeds cannot be stacked (vmap cannot update
    the running statistics), and bslab says so."""
    channels, height, side = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(width * (height // 2) * (side // 2), num_classes),
    )
