"""Each run's gradient noise scale B_simple over training: the critical batch size it predicts.

McCandlish et al. 2018: batches much smaller than B_simple waste steps on noise, much larger ones
waste samples. It is drawn like the loss (log10 values on a linear axis, ticks labelled with the
real sizes), on the same x-axes, with the same run colours and throttled redraws; the ends of
each measurement's 95% interval are drawn faint around it (where the interval is bounded).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

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
from tui_lab.schema.analysis import NoiseScalePoint


def noise_xy(
    points: Sequence[NoiseScalePoint],
    x_axis: XAxis,
    value: Callable[[NoiseScalePoint], float | None],
) -> tuple[list[float], list[float]]:
    """(x, log10 value) of one run's measurements on the chosen x-axis, where there is a value."""
    pairs = [(float(getattr(p, x_axis)), v) for p in points if (v := value(p))]
    return [x for x, _ in pairs], [math.log10(v) for _, v in pairs]


BAND: tuple[Callable[[NoiseScalePoint], float | None], ...] = (
    lambda p: p.b_low,
    lambda p: p.b_high,
)


class NoiseScaleChart(CurvesChart):
    """``update_runs`` with (session, estimates) pairs; the rest behaves as ``CurvesChart``."""

    def __init__(self, run_colors: RunColors | None = None, **widget_kwargs: Any) -> None:
        # "loss" for the axis: like the loss, B_simple spans decades and gets log ticks
        super().__init__("loss", run_colors, **widget_kwargs)
        self._points: dict[str, list[NoiseScalePoint]] = {}

    def update_runs(self, runs: Sequence[tuple[Session, list[NoiseScalePoint]]]) -> None:
        self._points = {session.id: points for session, points in runs}
        self.update_sessions([session for session, _ in runs])

    def series(self) -> list[Series]:
        band, lines = [], []
        for session in self._sessions:
            points = self._points.get(session.id, [])
            color = self.run_colors(session)
            for end in BAND:
                xs, ys = downsample(*noise_xy(points, self.x_axis, end), MAX_POINTS)
                if xs:
                    band.append(Series(None, xs, ys, color, faint=True))
            xs, ys = downsample(*noise_xy(points, self.x_axis, lambda p: p.b_simple), MAX_POINTS)
            if xs:
                lines.append(Series(run_label(session), xs, ys, color))
        return band + lines

    def _title(self) -> str:
        return f"B_simple (log, faint: 95% interval) · x: {X_AXIS_TITLES[self.x_axis]}"

    def _legend(self, plotted: list[Series]) -> str:
        if not plotted:
            return "no estimate yet: measured a few times an epoch while training"
        return super()._legend(plotted)
