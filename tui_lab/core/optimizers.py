"""torch.optim optimizers built from an OptimizerConfig, and the learning rate per step."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from tui_lab.schema import LrScaling, OptimizerConfig


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    config: OptimizerConfig,
    lr: float,
    *,
    capturable: bool = False,
) -> torch.optim.Optimizer:
    """The optimizer named by ``config`` at learning rate ``lr`` (already scaled for the batch).

    ``capturable`` keeps the step counters of optimizers that have them on the device, so that
    their step can be captured in a CUDA graph (SGD has none and is capturable as it is).
    """
    c = config.resolved()
    graph = {"capturable": True} if capturable else {}
    if c.name in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=c.momentum,
            nesterov=c.name == "nesterov",
            weight_decay=c.weight_decay,
        )
    if c.name == "rprop":
        return torch.optim.Rprop(params, lr=lr, etas=c.etas, step_sizes=c.step_sizes, **graph)
    if c.name == "rmsprop":
        return torch.optim.RMSprop(
            params,
            lr=lr,
            alpha=c.alpha,
            eps=c.eps,
            momentum=c.momentum,
            weight_decay=c.weight_decay,
            **graph,
        )
    if c.name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=c.eps, weight_decay=c.weight_decay)
    if c.name == "adadelta":
        return torch.optim.Adadelta(
            params, lr=lr, rho=c.rho, eps=c.eps, weight_decay=c.weight_decay, **graph
        )
    if c.name == "adam":
        return torch.optim.Adam(
            params, lr=lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay, **graph
        )
    if c.name == "adamw":
        return torch.optim.AdamW(
            params, lr=lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay, **graph
        )
    raise ValueError(f"unknown optimizer {c.name!r}")


def warmup_factor(scaling: LrScaling, step: int, steps_per_epoch: int) -> float:
    """Goyal et al.'s gradual warm-up: the lr rises linearly over the warm-up epochs."""
    warmup_steps = scaling.warmup_epochs * steps_per_epoch
    if warmup_steps <= 0 or step >= warmup_steps:
        return 1.0
    return (step + 1) / warmup_steps
