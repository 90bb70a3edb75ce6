"""Chart helpers shared by the terminal drawings and the app: run colours, series marks and
axis ticks.

Free of UI imports, so that commands printing charts do not load Textual.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

RGB = tuple[int, int, int]
# What plotext raises on values it cannot scale (1e300 wide, subnormal steps): a chart of such
# values, read from a file, is replaced by this line rather than ending the program.
CHART_FAULTS = (ArithmeticError, ValueError, IndexError)
UNDRAWABLE = "(chart not drawn: its values are beyond what a terminal chart can scale)"

# Okabe-Ito (colour-blind safe) without its yellow, then five more: all readable on light and
# dark. Indexed by batch-size rung (see ``run_color``), so neighbours on the ladder contrast.
PALETTE: tuple[RGB, ...] = (
    (0, 114, 178),  # blue
    (160, 160, 30),  # olive
    (0, 128, 128),  # teal
    (213, 94, 0),  # vermillion
    (0, 158, 115),  # bluish green
    (148, 103, 189),  # purple
    (90, 90, 210),  # indigo
    (230, 159, 0),  # orange
    (214, 39, 40),  # red
    (86, 180, 233),  # sky blue
    (140, 86, 75),  # brown
    (204, 121, 167),  # reddish purple
)
FULL_RUNG = len(PALETTE) - 1  # "full" has a colour of its own, whatever the data set's size
OPTIMIZER_SHIFT = 5  # coprime with the palette's length: each optimizer starts elsewhere


# Where colour is lost (output piped or redirected, a monochrome terminal, colour-blind eyes)
# each series of a chart still reads apart: it carries a mark of its own along its line, and its
# legend entry shows that mark. None is o, x, + or ●, which charts use for starts, ends, minima
# and points.
SERIES_MARKS = ("◆", "▲", "■", "▼", "◇", "△", "□", "▽")
MARKS_PER_SERIES = 5


def series_mark(index: int) -> str:
    """The mark of a chart's ``index``-th series."""
    return SERIES_MARKS[index % len(SERIES_MARKS)]


def mark_points(
    xs: Sequence[float], ys: Sequence[float], index: int = 0, count: int = MARKS_PER_SERIES
) -> tuple[list[float], list[float]]:
    """``count`` points spread evenly along the ``index``-th series, where its mark is drawn:
    away from its two ends (a path's start and end have marks of their own), and at other
    places than its neighbours' marks, so that series on the same x values keep theirs."""
    n = len(xs)
    phase = 0.2 + 0.6 * (index * 0.618 % 1)  # in [0.2, 0.8): never at the ends
    picks = sorted({min(n - 1, int((k + phase) * n / count)) for k in range(count)})
    return [xs[i] for i in picks], [ys[i] for i in picks]


def batch_rung(batch_size: int, full: bool) -> int:
    """The rung on the ladder 1, 2, 4, ... 1024 (larger sizes share the top one), or "full"."""
    if full:
        return FULL_RUNG
    return min(round(math.log2(max(1, batch_size))), FULL_RUNG - 1)


def run_color_index(optimizer_index: int, batch_size: int, full: bool) -> int:
    """A run's colour, from the run itself: its batch size picks the rung and its optimizer
    (its place in the schema's list) shifts it, so a run has one colour on every screen."""
    return (batch_rung(batch_size, full) + OPTIMIZER_SHIFT * optimizer_index) % len(PALETTE)


def log_ticks(low: float, high: float, most: int) -> tuple[list[float], list[str]]:
    """2 to ``most`` ticks on a log10 axis, labelled with real values (1-2-5 per decade)."""
    decades = range(math.floor(low), math.ceil(high) + 1)
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        values = [m * 10.0**k for k in decades for m in mantissas]
        values = [v for v in values if low <= math.log10(v) <= high]
        if len(values) >= min(3, max(2, most)):
            break
    values = _thin(values, most)
    if len(values) < 2:  # a flat curve: its two ends are the most useful labels
        values = [10**low, 10**high] if high > low else [10**low]
    labels = [short_number(v) if v >= 100 else f"{v:.2g}" for v in values]
    return [math.log10(v) for v in values], labels


def linear_ticks(
    low: float, high: float, most: int, integers: bool = False
) -> tuple[list[float], list[str]]:
    """2 to ``most`` round ticks (steps of 1, 2 or 5 times a power of ten), short labels."""
    if high <= low:
        return [low], [short_number(low)]
    top = 10.0 ** math.ceil(math.log10(high - low))
    steps = [top * m / 10**k for k in range(8) for m in (1, 0.5, 0.2)]  # coarse to fine
    best: list[float] = []
    for step in steps:
        if integers and step < 1:
            break
        values = [k * step for k in range(math.ceil(low / step), math.floor(high / step) + 1)]
        if len(values) > max(2, most):
            break
        if len(values) >= 2:
            best = values
    values = best or [low, high]
    return values, [short_number(v) for v in values]


def _thin(values: list[float], most: int) -> list[float]:
    return values[:: math.ceil(len(values) / max(2, most))] if values else values


def short_number(value: float) -> str:
    """12000 as 12k and 1500000 as 1.5M: sample counts fit under a tick."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def undrawable(width: int, height: int) -> str:
    """In place of a chart plotext could not draw: the same size, a title row, and why."""
    lines = ["", UNDRAWABLE[:width], *[""] * (height - 2)][: max(1, height)]
    return "".join(line.ljust(width) + "\n" for line in lines)


def render_plotext(
    draw: Callable[[Any], object],
    width: int,
    height: int,
    *,
    color: bool = True,
    terminal_colors: bool = False,
) -> str:
    """Draw onto plotext's global figure and return it as terminal text (ANSI colours unless
    ``color`` is False). The figure is cleared before and after, so charts never leak into each
    other; ``terminal_colors`` keeps the terminal's own background and text colours."""
    import plotext

    plotext.clear_figure()
    plotext.plotsize(width, height)
    if terminal_colors:
        for set_color in (plotext.canvas_color, plotext.axes_color, plotext.ticks_color):
            set_color("default")
    try:
        draw(plotext)
        text = plotext.build()
    except CHART_FAULTS:
        return undrawable(width, height)
    finally:
        plotext.clear_figure()
    return text if color else plotext.uncolorize(text)
