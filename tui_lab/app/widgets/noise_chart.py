"""Each run's gradient noise scale B_simple over training: the critical batch size it predicts.

McCandlish et al. 2018: batches much smaller than B_simple waste steps on noise, much larger ones
waste samples. It is drawn like the loss (log10 values on a linear axis, ticks labelled with the
real sizes), on the same x-axes, with the same run colours and throttled redraws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tui_lab.app.live_sweep import NoisePoint
from tui_lab.app.widgets.curves import (
    MAX_POINTS,
    X_AXIS_TITLES,
    CurvesChart,
    RunColors,
    Series,
    XAxis,
    downsample,
    run_label,
)
from tui_lab.schema import Session


def noise_xy(points: Sequence[NoisePoint], x_axis: XAxis) -> tuple[list[float], list[float]]:
    """(x, log10 B_simple) of one run on the chosen x-axis."""
    xs = [float(getattr(p, x_axis)) for p in points]
    return xs, [math.log10(p.b_simple) for p in points]


class NoiseScaleChart(CurvesChart):
    """``update_runs`` with (session, estimates) pairs; the rest behaves as ``CurvesChart``."""

    def __init__(self, run_colors: RunColors | None = None, **widget_kwargs: Any) -> None:
        # "loss" for the axis: like the loss, B_simple spans decades and gets log ticks
        super().__init__("loss", run_colors, **widget_kwargs)
        self._points: dict[str, list[NoisePoint]] = {}

    def update_runs(self, runs: Sequence[tuple[Session, list[NoisePoint]]]) -> None:
        self._points = {session.id: points for session, points in runs}
        self.update_sessions([session for session, _ in runs])

    def series(self) -> list[Series]:
        lines = []
        for session in self._sessions:
            points = self._points.get(session.id, [])
            if points:
                xs, ys = downsample(*noise_xy(points, self.x_axis), MAX_POINTS)
                lines.append(Series(run_label(session), xs, ys, self.run_colors(session)))
        return lines

    def _title(self) -> str:
        return f"B_simple (log) · x: {X_AXIS_TITLES[self.x_axis]}"

    def _legend(self, plotted: list[Series]) -> str:
        if not plotted:
            return "no estimate yet: measured every few steps while training"
        return super()._legend(plotted)
