"""The base of every chart and sketch in the app: a framed, focusable plotext plot.

textual-plotext rebuilds the whole plot inside ``render()``, which Textual also calls on focus
changes and hovers; a chart costs 5-70 ms to build, so the text is kept until the picture
(``picture_changed()``), the size or the theme changes. Title and legend live in the border so
that they never hide a point in a small terminal.
"""

from __future__ import annotations

from typing import Any

from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tui_lab.report.plotting import CHART_FAULTS, UNDRAWABLE


class FramedPlot(PlotextPlot):
    DEFAULT_CSS = """
    FramedPlot {
        border: round $secondary 50%;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        border-subtitle-align: left;
    }
    FramedPlot:focus { border: round $accent; }
    """
    can_focus = True  # so the keyboard can reach it and maximize it

    def __init__(self, **widget_kwargs: Any) -> None:
        super().__init__(**widget_kwargs)
        self.generation = 0  # pictures drawn so far: tests and callers can wait on it
        self._drawn: tuple[object, RenderResult] | None = None

    def picture_changed(self) -> None:
        """Call after drawing on ``self.plt``: the next render builds the new picture."""
        self.generation += 1
        self.refresh()

    def render(self) -> RenderResult:
        key = (self.generation, self.size, self.app.theme)
        if self._drawn is None or self._drawn[0] != key:
            try:
                self._drawn = (key, super().render())
            except CHART_FAULTS:
                self._drawn = (key, UNDRAWABLE)
        return self._drawn[1]
