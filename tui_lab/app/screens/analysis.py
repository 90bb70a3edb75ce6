"""The scaling analysis of the runs ticked on Compare: for each group of runs that differ only in
batch size, steps (or samples) to the target against batch size with the perfect-scaling line and
McCandlish et al.'s fit, the wall-time trade-off with its optimum, and what they say in words.

Everything is computed and drawn by ``scaling_report``, exactly as ``bslab compare`` prints it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_lab.app.screens import screen_css
from tui_lab.app.widgets.scaling_chart import Draw, ScalingChart
from tui_lab.report.scaling import (
    ScalingGroup,
    draw_steps_to_target,
    draw_time_tradeoff,
    scaling_groups,
)
from tui_lab.report.scaling_text import analysis_lines
from tui_lab.schema import Session


class AnalysisScreen(Screen):
    """One block per group: the two charts (side by side when wide), then the findings."""

    CSS = screen_css("analysis.tcss")
    HORIZONTAL_BREAKPOINTS: ClassVar = [(0, "-narrow"), (140, "-wide")]
    BINDINGS: ClassVar = [
        Binding("escape,q,g", "app.pop_screen", "Back", tooltip="back to Compare"),
        Binding("s", "toggle_samples", "Steps/samples", tooltip="steps or samples to target"),
        Binding("m", "app.toggle_maximize", "Zoom", tooltip="the focused chart fills the screen"),
    ]

    def __init__(self, sessions: Sequence[Session], **screen_kwargs) -> None:
        super().__init__(**screen_kwargs)
        # the largest sweep first: a group of one batch size has no scaling to show
        self.groups = sorted(scaling_groups(sessions), key=lambda group: -len(group.rows))
        self.samples = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="analysis"):
            for group in self.groups:
                with Container(classes="charts"):
                    yield ScalingChart(self._steps_draw(group), classes="steps-chart")
                    yield ScalingChart(partial(draw_time_tradeoff, group=group))
                # Rich markup, as bslab compare prints it: a user model's name in it is escaped
                yield Static(Text.from_markup("\n".join(analysis_lines(group))), classes="findings")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        analysis = self.query_one("#analysis")
        count = len(self.groups)
        analysis.border_title = (
            f"Scaling analysis: {count} group{'s' * (count != 1)} of runs that differ only in "
            "batch size"
        )
        analysis.border_subtitle = "s steps/samples · ↑↓ scroll · esc back"
        self.query_one(ScalingChart).focus()

    def _steps_draw(self, group: ScalingGroup) -> Draw:
        return partial(draw_steps_to_target, group=group, samples=self.samples)

    def action_toggle_samples(self) -> None:
        self.samples = not self.samples
        for group, chart in zip(self.groups, self.query(".steps-chart"), strict=True):
            assert isinstance(chart, ScalingChart)
            chart.draw = self._steps_draw(group)
