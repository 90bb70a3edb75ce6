"""One chart of the scaling analysis (``scaling_report.draw_*``) as a Textual widget.

The drawing lives in ``scaling_report`` and works on any plotext-API object; this widget only
hands it its own plot, sized to the widget, and puts the title and legend in its border, so that
they never hide a point in a small terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.content import Content

from tui_lab.app.widgets.curves import rgb_style
from tui_lab.app.widgets.framed_plot import FramedPlot
from tui_lab.report.scaling import ChartText

Draw = Callable[..., ChartText]  # draw(plt, size=(columns, lines)) -> title and legend


class ScalingChart(FramedPlot):
    """Redrawn when resized or when ``draw`` is replaced; the data does not change."""

    def __init__(self, draw: Draw, **widget_kwargs: Any) -> None:
        super().__init__(**widget_kwargs)
        self._draw_chart = draw

    @property
    def draw(self) -> Draw:
        return self._draw_chart

    @draw.setter
    def draw(self, draw: Draw) -> None:
        self._draw_chart = draw
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        size = (max(10, self.size.width - 8), max(4, self.size.height - 2))
        text = self._draw_chart(plt, size=size)
        self.border_title = Content(text.title)  # names the user's model: not markup
        self.border_subtitle = Text("  ").join(
            Text.assemble((entry.marker, rgb_style(entry.color)), f" {entry.label}")
            for entry in text.legend
        )
        self.picture_changed()
