"""A framed plot for one sketch: a trajectory, a paraboloid or an interpolation panel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tui_lab.app.widgets.framed_plot import FramedPlot


class SketchPlot(FramedPlot):
    """One sketch panel. The border carries the title, so plotext's own title row is dropped
    to leave the picture every row."""

    DEFAULT_CSS = "SketchPlot { border-subtitle-align: right; }"

    def show(self, draw: Callable[[Any], None]) -> None:
        """Replace the picture with what ``draw(plt)`` draws (the sketch functions' signature)."""
        self.plt.clear_data()
        draw(self.plt)
        self.plt.title("")
        self.plt.xaxes(True, False)  # lower and left axes only: the border frames the rest
        self.plt.yaxes(True, False)
        self.picture_changed()
