"""Keskar's 1-D plot between two solutions, and the sharpness verdict read off it."""

from __future__ import annotations

import math
from typing import Any

from tui_lab.report.plotting import mark_points, render_plotext, series_mark
from tui_lab.schema.trajectory import Interpolation

# A loss of exactly zero (float32 underflow) is drawn at this value on the log10 axis.
LOSS_FLOOR = 1e-8


def draw_interpolation(plt: Any, interp: Interpolation) -> None:
    """Clear `plt`'s data and draw log10 loss (left axis) and accuracy (right axis) against α.

    Train is a solid braille line, validation a dotted one, each with its own mark along it
    and in the legend; vertical lines mark α = 0 (a) and
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
    for index, (label, values, marker, color, side, log) in enumerate(series):
        points = [
            (a, math.log10(max(v, LOSS_FLOOR)) if log else v)
            for a, v in zip(interp.alphas, values, strict=True)
            if v is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            plt.plot(xs, ys, marker=marker, color=color, yside=side)
            mark = series_mark(index)  # loss and accuracy read apart without colour too
            plt.scatter(
                *mark_points(xs, ys, index), marker=mark, color=color, label=label, yside=side
            )
    plt.ylim(0, 1, yside="right")
    plt.vline(0, "gray")
    plt.vline(1, "gray")
    plt.xticks([-1, 0, 0.5, 1, 2], ["-1", "0 = a", "0.5", "1 = b", "2"])


def render_interpolation(
    interp: Interpolation, width: int = 100, height: int = 25, color: bool = True
) -> str:
    """The 1-D plot as terminal text (ANSI colours unless `color` is False), for the CLI."""
    return render_plotext(lambda plt: draw_interpolation(plt, interp), width, height, color=color)


SHARPNESS_STEP = 0.5


def loss_at(interp: Interpolation, alpha: float) -> float | None:
    """Training loss measured at exactly this α (infinite where the weights diverged); None
    where α was not evaluated: a neighbour's loss would pass for a measurement."""
    index = min(range(len(interp.alphas)), key=lambda i: abs(interp.alphas[i] - alpha))
    if abs(interp.alphas[index] - alpha) > 1e-6:
        return None
    loss = interp.train_loss[index]
    return math.inf if loss is None else loss


def sharpness_lines(interp: Interpolation) -> list[str]:
    """How much the training loss rises half a unit either side of each solution.

    A solution whose loss falls on one side is not at a minimum along this line (the run had
    not converged), so no verdict on sharpness is given for it.
    """
    lines = [
        f"training loss change at α ± {SHARPNESS_STEP} around each solution (higher = sharper):"
    ]
    rises = {}
    for name, label, centre in (("a", interp.label_a, 0.0), ("b", interp.label_b, 1.0)):
        around = (centre - SHARPNESS_STEP, centre, centre + SHARPNESS_STEP)
        losses = [loss_at(interp, a) for a in around]
        missing = [a for a, loss in zip(around, losses, strict=True) if loss is None]
        if missing:
            lines.append(
                f"  {name} = {label}: not measured at α={', '.join(f'{a:g}' for a in missing)}:"
                " no sharpness from fewer than three points"
            )
            continue
        left, bottom, right = (loss for loss in losses if loss is not None)
        sides = {around[0]: left - bottom, around[2]: right - bottom}
        changes = ", ".join(f"{rise:+.4g} at α={alpha:g}" for alpha, rise in sides.items())
        lines.append(f"  {name} = {label}: loss {bottom:.4g}; {changes}")
        falls = [alpha for alpha, rise in sides.items() if rise < 0]
        if falls:
            lines.append(
                f"    not a minimum along this line (the loss falls towards α={falls[0]:g}): "
                "the run had not converged"
            )
        else:
            rises[name] = sum(sides.values()) / 2
    if len(rises) == 2:
        sharper, flatter = sorted(rises, key=rises.__getitem__, reverse=True)
        ratio = rises[sharper] / rises[flatter] if rises[flatter] > 0 else math.inf
        lines.append(
            f"  → {sharper} sits in the sharper minimum: its loss rises {ratio:.3g}× as much "
            f"(mean {rises[sharper]:+.4g} against {rises[flatter]:+.4g})"
        )
    return lines
