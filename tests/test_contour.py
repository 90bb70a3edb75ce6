"""The shared contour sketch: dots on the true contour lines, bounded series, stable drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotext
import pytest
from textual_plotext.plot import Plot

from tui_lab.analysis.downsample import thin
from tui_lab.report.contour import (
    MAX_CONTOUR_POINTS,
    MAX_PATH_POINTS,
    ContourPath,
    contour_levels,
    contour_points,
    draw_contour_sketch,
    refine,
    render_contour_sketch,
)

SNAPSHOTS = Path(__file__).parent / "snapshots_text"


def tilted_bowl(points: int = 25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A quadratic bowl with tilted elliptical contours, minimum 0.1 at (0.5, -0.25)."""
    xs = np.linspace(-2, 3, points)
    ys = np.linspace(-1.5, 1, points)
    dx, dy = xs[None, :] - 0.5, ys[:, None] + 0.25
    return xs, ys, 0.1 + 0.5 * (dx**2 + 0.8 * dx * dy + 4 * dy**2)


def bowl_loss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    dx, dy = x - 0.5, y + 0.25
    return 0.1 + 0.5 * (dx**2 + 0.8 * dx * dy + 4 * dy**2)


def spiral_paths() -> list[ContourPath]:
    t, z = np.linspace(0, 1, 50), np.linspace(0, 1, 12)
    return [
        ContourPath("smooth", 0.5 + 2.3 * np.exp(-4 * t), -0.25 + np.exp(-4 * t) * np.cos(9 * t)),
        ContourPath("zig-zag", 0.5 + 2.3 * (1 - z), -0.25 + 0.4 * (-1) ** np.arange(12) * (1 - z)),
    ]


@pytest.mark.parametrize("resolution", [0, 100])
def test_contour_dots_lie_on_their_level(resolution: int) -> None:
    """On the grid as given and refined: the dots sit on the true contour lines."""
    xs, ys, values = refine(*tilted_bowl(points=25), resolution=resolution)
    for level in contour_levels(values, 6):
        px, py = contour_points(xs, ys, values, float(level))
        assert px.size >= 8, "each ring is drawn with dots all round"
        # Interpolating a quadratic errs by at most (∂²L/∂x²·hx² + ∂²L/∂y²·hy²) / 8 (refined:
        # with the coarse spacing, since bilinear refining is exact only for the linear part).
        hx, hy = 5 / 24, 2.5 / 24
        assert np.abs(bowl_loss(px, py) - level).max() <= (1.0 * hx**2 + 4.0 * hy**2) / 8 + 1e-12


def test_contour_dots_trace_closed_rings_around_the_minimum() -> None:
    xs, ys, values = tilted_bowl(points=41)
    level = 0.35
    px, py = contour_points(xs, ys, values, level)
    angles = np.arctan2(py + 0.25, px - 0.5)
    covered = np.histogram(angles, bins=12, range=(-np.pi, np.pi))[0]
    assert (covered > 0).all(), "the ring goes all the way round"


def test_log_levels_are_dense_near_the_bottom() -> None:
    _, _, values = tilted_bowl()
    levels = contour_levels(values, 8, log_levels=True)
    assert np.all(np.diff(levels) > 0)
    assert values.min() < levels[0] < levels[-1] < values.max()
    excess = levels - values.min()
    assert np.allclose(excess[1:] / excess[:-1], excess[1] / excess[0])
    linear = contour_levels(values, 8, log_levels=False)
    assert np.allclose(np.diff(linear), np.diff(linear)[0])


def test_thin_keeps_ends_and_bounds_length() -> None:
    kept = thin(list(range(1000)), 300)
    assert len(kept) <= 300 and kept[0] == 0 and kept[-1] == 999
    assert thin([1.0, 2.0], 300) == [1.0, 2.0]


class RecordingPlot:
    """Stands in for a plotext object and keeps every call, to check what would be drawn."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


def test_every_series_is_bounded_and_each_path_has_its_own_colour_and_mark() -> None:
    xs, ys, values = tilted_bowl(points=60)
    t = np.linspace(0, 1, 5000)
    paths = [ContourPath(f"path {i}", 2 * t + i * 0.1, t - 1) for i in range(5)]
    plt = RecordingPlot()
    draw_contour_sketch(plt, xs, ys, values, paths, levels=20)
    series = [call for call in plt.calls if call[0] in ("plot", "scatter")]
    lines = [call for call in series if call[0] == "plot"]
    assert len({kwargs["color"] for _, _, kwargs in lines}) == len(paths)
    legend = [kwargs for _, _, kwargs in series if kwargs.get("label")]
    assert [kwargs["label"] for kwargs in legend] == [p.label for p in paths]
    assert len({kwargs["marker"] for kwargs in legend}) == len(paths)  # apart without colour
    for name, (x, _), _ in series:
        assert len(x) <= (MAX_PATH_POINTS if name == "plot" else MAX_CONTOUR_POINTS)
    assert plt.calls[0][0] == "clear_data", "a redraw replaces the previous picture"


def test_same_drawing_in_a_textual_plotext_widget_plot() -> None:
    xs, ys, values = tilted_bowl()
    widget_plot = Plot()
    draw_contour_sketch(widget_plot, xs, ys, values, spiral_paths(), title="bowl")
    widget_plot.plotsize(60, 20)
    text = widget_plot.uncolorize(widget_plot.build())
    assert text == render_contour_sketch(
        xs, ys, values, spiral_paths(), width=60, height=20, color=False, title="bowl"
    )


def test_rendering_leaves_no_state_behind_in_plotext() -> None:
    xs, ys, values = tilted_bowl()
    first = render_contour_sketch(xs, ys, values, spiral_paths(), width=60, height=20)
    plotext.plot([0, 1], [5, 6], label="someone else's plot")
    plotext.clear_figure()
    assert render_contour_sketch(xs, ys, values, spiral_paths(), width=60, height=20) == first


def test_render_matches_snapshot(assert_text_snapshot) -> None:
    """Golden text; regenerate with BSLAB_UPDATE_SNAPSHOTS=1 after a deliberate change."""
    xs, ys, values = tilted_bowl()
    text = render_contour_sketch(
        xs,
        ys,
        values,
        spiral_paths(),
        width=72,
        height=24,
        color=False,
        title="tilted bowl",
        minimum=(0.5, -0.25),
    )
    assert "\x1b[" not in text
    assert_text_snapshot("contour_sketch.txt", text)


def test_a_path_that_ran_off_to_infinity_still_draws_at_once() -> None:
    xs, ys, values = tilted_bowl()
    runaway = ContourPath("diverged", [2.0, 1e150, -1e200], [0.5, -1e150, 1e300])
    text = render_contour_sketch(xs, ys, values, [runaway], width=60, height=20, color=False)
    assert "diverged" in text
