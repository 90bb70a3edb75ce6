"""Between two solutions: loss and accuracy along the line through two final weights.

Keskar et al. 2017 (figure 3): with θ(α) = (1 − α)·θ_a + α·θ_b for α from −1 to 2, a sharp
minimum shows as a narrow dip around its end of the line and a flat one as a wide basin.
Typically θ_a is a small-batch solution and θ_b a large-batch one of the same model and data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from tui_lab.evaluation import LossFn, evaluate
from tui_lab.schema.trajectory import Interpolation
from tui_lab.weights import preserved_weights

# α from −1 to 2 in steps of 0.1, as in Keskar et al. 2017; 0 and 1 exactly.
DEFAULT_ALPHAS = [-1 + i / 10 for i in range(31)]

# A loss of exactly zero (float32 underflow) is drawn at this value on the log10 axis.
LOSS_FLOOR = 1e-8

Batch = tuple[torch.Tensor, torch.Tensor]


def interpolate(
    model: torch.nn.Module,
    theta_a: Mapping[str, torch.Tensor],
    theta_b: Mapping[str, torch.Tensor],
    train: Batch,
    val: Batch,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    loss_fn: LossFn = F.cross_entropy,
    sessions: tuple[str, str] = ("a", "b"),
    labels: tuple[str, str] = ("", ""),
) -> Interpolation:
    """Loss and accuracy on `train` and `val` (fixed subsets on the model's device) at each α.

    `theta_a` and `theta_b` are state dicts of `model`'s architecture (e.g. from `load_weights`);
    floating-point entries are interpolated, integer buffers are taken from θ_a. The model is
    evaluated in eval mode and its own weights are restored afterwards, also on error.
    """
    device = next(model.parameters()).device
    expected = {k: v.shape for k, v in model.state_dict().items()}
    for name, theta in (("a", theta_a), ("b", theta_b)):
        if {k: v.shape for k, v in theta.items()} != expected:
            raise ValueError(f"the weights of session {name} do not fit this model")
    # Copies: the caller may pass the live model's own state dict, which loading would overwrite.
    theta_a = {k: v.to(device, copy=True) for k, v in theta_a.items()}
    theta_b = {k: v.to(device, copy=True) for k, v in theta_b.items()}
    results: list[torch.Tensor] = []
    with preserved_weights(model):
        for alpha in alphas:
            model.load_state_dict(_between(theta_a, theta_b, alpha))
            metrics = (*evaluate(model, *train, loss_fn), *evaluate(model, *val, loss_fn))
            results.append(torch.stack(metrics))
    train_loss, train_accuracy, val_loss, val_accuracy = torch.stack(results).T.cpu().tolist()
    return Interpolation(
        session_a=sessions[0],
        session_b=sessions[1],
        label_a=labels[0],
        label_b=labels[1],
        alphas=list(alphas),
        train_loss=_finite_or_none(train_loss),
        train_accuracy=_finite_or_none(train_accuracy, train_loss),
        val_loss=_finite_or_none(val_loss),
        val_accuracy=_finite_or_none(val_accuracy, val_loss),
        train_samples=len(train[0]),
        val_samples=len(val[0]),
    )


def _between(
    theta_a: Mapping[str, torch.Tensor], theta_b: Mapping[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    return {
        k: torch.lerp(a, theta_b[k], alpha) if a.is_floating_point() else a
        for k, a in theta_a.items()
    }


def _finite_or_none(values: list[float], losses: list[float] | None = None) -> list[float | None]:
    """None where the loss is not finite: the weights diverged there, accuracy is meaningless."""
    losses = values if losses is None else losses
    return [v if math.isfinite(loss) else None for v, loss in zip(values, losses, strict=True)]


def draw_interpolation(plt: Any, interp: Interpolation) -> None:
    """Clear `plt`'s data and draw log10 loss (left axis) and accuracy (right axis) against α.

    Train is a solid braille line, validation a dotted one; vertical lines mark α = 0 (a) and
    α = 1 (b), the two solutions. log10 on a linear axis because textual-plotext's log scale breaks
    on redraw.
    """
    plt.clear_data()
    label_a = interp.label_a or interp.session_a
    label_b = interp.label_b or interp.session_b
    plt.title(f"α=0: {label_a}   α=1: {label_b}")
    plt.xlabel("α")
    series = (
        ("train log10 loss", interp.train_loss, "braille", "red", "left", True),
        ("val log10 loss", interp.val_loss, "dot", "red", "left", True),
        ("train accuracy", interp.train_accuracy, "braille", "blue", "right", False),
        ("val accuracy", interp.val_accuracy, "dot", "blue", "right", False),
    )
    for label, values, marker, color, side, log in series:
        points = [
            (a, math.log10(max(v, LOSS_FLOOR)) if log else v)
            for a, v in zip(interp.alphas, values, strict=True)
            if v is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            plt.plot(xs, ys, marker=marker, color=color, label=label, yside=side)
    plt.ylim(0, 1, yside="right")
    plt.vline(0, "gray")
    plt.vline(1, "gray")
    plt.xticks([-1, 0, 0.5, 1, 2], ["-1", "0 = a", "0.5", "1 = b", "2"])


def render_interpolation(
    interp: Interpolation, width: int = 100, height: int = 25, color: bool = True
) -> str:
    """The 1-D plot as terminal text (ANSI colours unless `color` is False), for the CLI."""
    import plotext

    plotext.clear_figure()
    plotext.plotsize(width, height)
    draw_interpolation(plotext, interp)
    text = plotext.build()
    plotext.clear_figure()
    return text if color else plotext.uncolorize(text)
