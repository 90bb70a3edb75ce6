"""Drawing a run's path on its PCA plane (the computation is in tui_lab.analysis.trajectory)."""

from __future__ import annotations

from typing import Any

from tui_lab.report.contour import ContourPath, draw_contour_sketch, render_contour_sketch
from tui_lab.schema.trajectory import TrajectorySketch


def _contour_arguments(sketch: TrajectorySketch, label: str) -> dict[str, Any]:
    first, second = sketch.explained_variance
    return {
        "xs": sketch.grid_x,
        "ys": sketch.grid_y,
        "values": sketch.grid_loss,
        "paths": [ContourPath(label, sketch.path_x, sketch.path_y)],
        "title": f"{label}: PCA plane, {first:.0%} + {second:.0%} of the path's variance",
    }


def draw_trajectory(plt: Any, sketch: TrajectorySketch, label: str = "path") -> None:
    """Loss contours in the PCA plane with the path on top (o start, x end = final weights)."""
    draw_contour_sketch(plt, **_contour_arguments(sketch, label))


def render_trajectory(
    sketch: TrajectorySketch,
    width: int = 100,
    height: int = 30,
    label: str = "path",
    color: bool = True,
) -> str:
    """The trajectory sketch as terminal text (ANSI colours unless `color` is False)."""
    return render_contour_sketch(
        **_contour_arguments(sketch, label), width=width, height=height, color=color
    )
