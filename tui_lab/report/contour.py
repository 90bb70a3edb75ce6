"""Contour lines of a 2-D loss surface with optimizer paths drawn on top.

Shared by the paraboloid lab and the real-network trajectory sketch. ``plt`` is anything with
the plotext API: the ``plotext`` module (for a terminal string) or ``PlotextPlot.plt`` inside a
textual-plotext widget, so the app and the command line draw exactly the same picture.

textual-plotext rebuilds the whole plot on every render (about 15 ms per 500 points), so every
series is bounded here: paths are thinned to ``MAX_PATH_POINTS`` and contour dots to
``MAX_CONTOUR_POINTS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tui_lab.analysis.downsample import thin
from tui_lab.report.plotting import mark_points, render_plotext, series_mark

MAX_PATH_POINTS = 300
MAX_CONTOUR_POINTS = 1200
# Grids coarser than this are refined by bilinear interpolation before the contour test, so
# that a 25 × 25 grid still gives dotted lines rather than scattered specks.
CONTOUR_RESOLUTION = 100
CONTOUR_COLOR = "gray"
# Well separated on both dark and light terminals; gray is kept for the contour lines.
PALETTE = (
    "red",
    "blue+",
    "green",
    "orange",
    "cyan",
    "magenta",
    "red+",
    "green+",
    "blue",
    "magenta+",
    "cyan+",
    "orange+",
)


@dataclass(frozen=True)
class ContourPath:
    """One optimizer path in the plane of the sketch; ``color`` None takes the next free one."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str | None = None


def contour_levels(values: np.ndarray, count: int, log_levels: bool = True) -> np.ndarray:
    """``count`` loss levels spread over the grid, from near the bottom to near the rim.

    Log spacing is measured above the grid's minimum, so a quadratic bowl gets rings whose
    radii grow geometrically: dense near the minimum, where the paths end, and sparse far out.
    """
    finite = values[np.isfinite(values)]
    floor = float(finite.min())
    excess = finite - floor
    top = float(np.quantile(excess, 0.9))
    if top <= 0:
        return np.array([floor])
    if log_levels:
        bottom = max(float(np.quantile(excess, 0.005)), top * 1e-3)
        if bottom <= 0 or bottom >= top:
            bottom = top * 1e-3
        return floor + np.geomspace(bottom, top, count)
    return floor + np.linspace(top / count, top, count)


def contour_points(
    xs: np.ndarray, ys: np.ndarray, values: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Where the surface crosses ``level``: one point per grid edge whose two ends straddle it.

    This is the crossing test of marching squares; the point is placed on the edge by linear
    interpolation, so the dots sit on the contour line rather than on cell centres.
    """
    above = values >= level
    # Edges between horizontal neighbours (same row y, columns j and j+1).
    rows, cols = np.nonzero(above[:, :-1] != above[:, 1:])
    v0, v1 = values[rows, cols], values[rows, cols + 1]
    t = (level - v0) / (v1 - v0)
    h_x = xs[cols] + t * (xs[cols + 1] - xs[cols])
    h_y = ys[rows]
    # Edges between vertical neighbours (same column x, rows i and i+1).
    rows, cols = np.nonzero(above[:-1, :] != above[1:, :])
    v0, v1 = values[rows, cols], values[rows + 1, cols]
    t = (level - v0) / (v1 - v0)
    v_x = xs[cols]
    v_y = ys[rows] + t * (ys[rows + 1] - ys[rows])
    return np.concatenate([h_x, v_x]), np.concatenate([h_y, v_y])


def refine(
    xs: np.ndarray, ys: np.ndarray, values: np.ndarray, resolution: int = CONTOUR_RESOLUTION
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid resampled to about ``resolution`` points per side by bilinear interpolation.

    Bilinear interpolation is exact along grid lines' directions for the linear part, so the
    contours keep their shape and only get more dots; ``xs`` and ``ys`` must be increasing.
    """
    fine_x = np.linspace(xs[0], xs[-1], max(resolution, xs.size))
    fine_y = np.linspace(ys[0], ys[-1], max(resolution, ys.size))
    along_x = np.stack([np.interp(fine_x, xs, row) for row in values])
    both = np.stack([np.interp(fine_y, ys, column) for column in along_x.T], axis=1)
    return fine_x, fine_y, both


def draw_contour_sketch(
    plt: Any,
    xs: Sequence[float],
    ys: Sequence[float],
    values: Sequence[Sequence[float]] | np.ndarray,
    paths: Sequence[ContourPath],
    *,
    levels: int | Sequence[float] = 8,
    title: str = "",
    log_levels: bool = True,
    minimum: tuple[float, float] | None = None,
) -> None:
    """Clear ``plt``'s data and draw contour dots of ``values[len(ys), len(xs)]`` plus ``paths``.

    ``xs`` and ``ys`` are increasing; non-finite values are left out of the contours.
    Each path is a line in its own colour and mark, labelled in the legend, with its start ``o``
    and its end ``x``; ``minimum``, when given, is marked ``+``. The caller sets the size and
    builds (or refreshes the widget), so this works the same for a widget and a string.
    """
    grid_x, grid_y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    surface = np.asarray(values, dtype=float)
    if surface.shape != (grid_y.size, grid_x.size):
        raise ValueError(f"values must be [len(ys), len(xs)], got {surface.shape}")
    chosen = (
        contour_levels(surface, levels, log_levels)
        if isinstance(levels, int)
        else np.asarray(levels, dtype=float)
    )
    with np.errstate(invalid="ignore", divide="ignore"):  # non-finite cells: dots dropped below
        fine = refine(grid_x, grid_y, surface)
        crossings = [contour_points(*fine, float(level)) for level in chosen]
    dots_x = np.concatenate([c[0] for c in crossings]) if crossings else np.empty(0)
    dots_y = np.concatenate([c[1] for c in crossings]) if crossings else np.empty(0)
    drawable = np.isfinite(dots_x) & np.isfinite(dots_y)
    dots_x, dots_y = dots_x[drawable], dots_y[drawable]

    plt.clear_data()
    plt.title(title)
    plt.xlim(float(grid_x[0]), float(grid_x[-1]))
    plt.ylim(float(grid_y[0]), float(grid_y[-1]))
    if dots_x.size:
        plt.scatter(
            thin(dots_x, MAX_CONTOUR_POINTS),
            thin(dots_y, MAX_CONTOUR_POINTS),
            marker="braille",
            color=CONTOUR_COLOR,
        )
    drawn = []
    for index, path in enumerate(paths):
        if len(path.xs) == 0:
            continue
        color = path.color or PALETTE[index % len(PALETTE)]
        path_x = _within_reach(thin(path.xs, MAX_PATH_POINTS), grid_x)
        path_y = _within_reach(thin(path.ys, MAX_PATH_POINTS), grid_y)
        plt.plot(path_x, path_y, marker="braille", color=color)
        drawn.append((index, path.label, path_x, path_y, color))
    for index, label, path_x, path_y, color in drawn:  # marks over every line, none hidden
        if label:  # its mark along it, and in the legend: paths read apart without colour
            mark = series_mark(index)
            plt.scatter(*mark_points(path_x, path_y, index), marker=mark, color=color, label=label)
        plt.scatter([path_x[0]], [path_y[0]], marker="o", color=color)
        plt.scatter([path_x[-1]], [path_y[-1]], marker="x", color=color)
    if minimum is not None:
        plt.scatter([minimum[0]], [minimum[1]], marker="+", color="default")


def _within_reach(values: list[float], grid: np.ndarray) -> list[float]:
    """Coordinates clamped to a frame-wide margin around the grid.

    plotext rasterises a segment over its whole length, so a diverged point at 1e150 would
    hang the drawing; clamped, the segment still leaves the frame in about its direction.
    """
    span = float(grid[-1] - grid[0])
    return np.clip(values, grid[0] - span, grid[-1] + span).tolist()


def render_contour_sketch(
    xs: Sequence[float],
    ys: Sequence[float],
    values: Sequence[Sequence[float]] | np.ndarray,
    paths: Sequence[ContourPath],
    *,
    width: int = 100,
    height: int = 30,
    color: bool = True,
    **options: Any,
) -> str:
    """The sketch as terminal text (ANSI colours unless ``color`` is False), for the CLI.

    ``options`` are the keyword options of :func:`draw_contour_sketch`.
    """
    return render_plotext(
        lambda plt: draw_contour_sketch(plt, xs, ys, values, paths, **options),
        width,
        height,
        color=color,
    )
