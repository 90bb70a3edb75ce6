"""What the chart keys do on every screen with training curves (Train and Compare): one
behaviour and one wording for x, w, e and f wherever they are pressed."""

from __future__ import annotations

from collections.abc import Sequence

from textual.screen import Screen

from tui_lab.app.widgets.curves import (
    NO_FOCUS,
    NO_SEEDS,
    CurvesChart,
    cycle_focus,
    next_x_axis,
    toggle_raw,
    toggle_seed_view,
)
from tui_lab.schema import Session

NO_RUNS_FOR_SEEDS = "e switches seeds' mean and each seed: no runs shown"


class CurvesScreen(Screen):
    """A screen whose CurvesCharts (the loss chart ``#loss-chart`` among them) draw
    ``chart_sessions()``; ``say`` is how it answers a key that has nothing to change."""

    def chart_sessions(self) -> Sequence[Session]:
        raise NotImplementedError

    def say(self, text: str) -> None:
        self.notify(text)

    def action_cycle_x_axis(self) -> None:
        for chart in self.query(CurvesChart):
            chart.x_axis = next_x_axis(chart.x_axis)

    def action_toggle_raw(self) -> None:
        self.say(toggle_raw(self.query_one("#loss-chart", CurvesChart)))

    def action_toggle_seeds(self) -> None:
        """Seeds of one configuration: their mean with a band, or every seed as its own line;
        without seeds, say so rather than do nothing."""
        sessions = self.chart_sessions()
        if not toggle_seed_view(self.query(CurvesChart), sessions):
            self.say(NO_SEEDS if sessions else NO_RUNS_FOR_SEEDS)

    def action_cycle_focus(self) -> None:
        said = cycle_focus(self.query(CurvesChart), self.chart_sessions())
        self.say(said or NO_FOCUS)
