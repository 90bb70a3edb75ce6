"""Drawing the paraboloid lab: optimizer paths over the contours of a linear neuron's error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tui_lab.report.contour import ContourPath, draw_contour_sketch, render_contour_sketch
from tui_lab.schema import ParaboloidSession
from tui_lab.schema.paraboloid import ParaboloidPath


def _sketch_arguments(
    session: ParaboloidSession, paths: Sequence[ParaboloidPath] | None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    preset = session.preset
    paths = session.paths if paths is None else paths
    title = (
        f"linear neuron, squared error: κ={preset.condition_number:g}, "
        f"noise={preset.noise:g}, n={preset.n_samples}, {preset.epochs} epochs"
    )
    contour_paths = [ContourPath(p.label, p.w1, p.w2) for p in paths]
    grid = session.grid
    return (grid.w1, grid.w2, grid.loss, contour_paths), {
        "title": title,
        "levels": grid.levels,
        "minimum": session.minimum,
    }


def draw_paraboloid(
    plt: Any, session: ParaboloidSession, paths: Sequence[ParaboloidPath] | None = None
) -> None:
    """Draw ``paths`` (default: all) over the session's contours on a plotext-API object."""
    args, options = _sketch_arguments(session, paths)
    draw_contour_sketch(plt, *args, **options)


def render_paraboloid(
    session: ParaboloidSession,
    paths: Sequence[ParaboloidPath] | None = None,
    *,
    width: int = 100,
    height: int = 32,
    color: bool = True,
) -> str:
    """The sketch as terminal text, for the command that prints it (``paths`` default: all)."""
    args, options = _sketch_arguments(session, paths)
    return render_contour_sketch(*args, width=width, height=height, color=color, **options)
