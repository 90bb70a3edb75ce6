"""The networks the lab trains, each built for the data set's input shape and class count."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from tui_lab.core.user_model import build_user_model, check_user_model
from tui_lab.errors import BadInput
from tui_lab.schema import CheckedModel, ModelName, UserModel

if TYPE_CHECKING:
    from tui_lab.core.data import Data


class LeNet5(nn.Module):
    """LeCun et al. 1998: conv-pool-conv-pool-fc-fc-fc (ReLU and max-pooling, as usual today)."""

    def __init__(self, in_channels: int, side: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        flat_side = (side // 2 - 4) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * flat_side * flat_side, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def mlp(in_features: int, num_classes: int) -> nn.Module:
    """Two hidden layers: the simplest network on which batch-size effects still show."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def small_cnn(in_channels: int, side: int, num_classes: int) -> nn.Module:
    """A small VGG-style net that reaches a useful CIFAR-10 accuracy in a few epochs."""

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        *block(in_channels, 32),
        *block(32, 64),
        *block(64, 128),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, num_classes),
    )


class Residual(nn.Module):
    """x + f(x): the identity path keeps gradients flowing through a deeper net."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)


class Scale(nn.Module):
    """Multiply the logits by a constant (ResNet-9's 0.125, which keeps early steps tame)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def resnet9(in_channels: int, num_classes: int, width: int = 32) -> nn.Module:
    """Page's ResNet-9 (the DAWNBench fast-training CIFAR-10 net, which airbench refined) at a
    quarter of its width by default: prep, then three stages that double the channels and halve
    the side, two of them with a residual pair of convolutions; max-pool, linear, scale 1/8.
    About 1.6 M parameters at width 32 (6.6 M at Page's 64)."""

    def conv_bn(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    w = width
    return nn.Sequential(
        *conv_bn(in_channels, w),
        *conv_bn(w, 2 * w),
        nn.MaxPool2d(2),
        Residual(*conv_bn(2 * w, 2 * w), *conv_bn(2 * w, 2 * w)),
        *conv_bn(2 * w, 4 * w),
        nn.MaxPool2d(2),
        *conv_bn(4 * w, 8 * w),
        nn.MaxPool2d(2),
        Residual(*conv_bn(8 * w, 8 * w), *conv_bn(8 * w, 8 * w)),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(8 * w, num_classes, bias=False),
        Scale(0.125),
    )


def build_model(
    name: ModelName | UserModel, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """The named model (or the user's) for inputs of shape ``input_shape`` (one sample's)."""
    if isinstance(name, UserModel):
        return build_user_model(name, input_shape, num_classes)
    if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
        raise ValueError(
            f"{name} takes square images (channels, side, side), not inputs of shape "
            f"{tuple(input_shape)}: name your own model for this data"
        )
    channels, side, _ = input_shape
    if name == "lenet5":
        return LeNet5(channels, side, num_classes)
    if name == "mlp":
        return mlp(channels * side * side, num_classes)
    if name == "cnn":
        return small_cnn(channels, side, num_classes)
    if name == "resnet9":
        return resnet9(channels, num_classes)
    raise ValueError(f"unknown model {name!r}")


def checked_model(
    spec: ModelName | UserModel, data: Data, source: str | None = None
) -> ModelName | CheckedModel:
    """The model a sweep's runs record, checked against the data before the first run: the
    user's is built and run one batch forward and backward (``check_user_model``); a built-in
    one must fit the data's shape. Any problem is BadInput naming the preset's field."""
    if isinstance(spec, UserModel):
        return check_user_model(spec, data, source)
    try:
        model = build_model(spec, data.input_shape, data.num_classes)
        with torch.no_grad():
            model(data.train_x[:2])
    except (ValueError, RuntimeError) as error:
        raise BadInput(
            f"{spec} does not fit {data.name}: {str(error).splitlines()[0]}",
            source=source,
            field="model",
        ) from None
    return spec


def seeded_model(
    name: ModelName | UserModel, data: Data, seed: int, device: str | torch.device
) -> nn.Module:
    """The run's starting model: the same name, data shape and seed always give the same weights,
    which is what makes runs comparable and a sweep reproducible."""
    torch.manual_seed(seed)
    model = build_model(name, data.input_shape, data.num_classes).to(device)
    return fastest_layout(model, torch.device(device))


def fastest_layout(model: nn.Module, device: torch.device) -> nn.Module:
    """Convolutional models on the CPU keep their weights channels-last, oneDNN's own layout:
    LeNet-5 then trains 1.2× and evaluates 1.4× faster at batch 8 to 512 (1.03× at batch 1).
    Only the layout changes, not the values; GPUs and dense models keep the default."""
    if device.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return model.to(memory_format=torch.channels_last)
    return model
