"""The trajectory sketches of 2–4 runs side by side, and the line between two of them.

Each panel is a run's path in the plane of its top two PCA directions (Li et al. 2018), so
batch 8 and full batch can be read at a glance. With exactly two runs of the same model and
data, ``i`` evaluates the loss along the line through their final weights (Keskar et al. 2017):
the picture of sharp versus flat minima. That takes seconds, so it runs in a thread worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Static
from textual.worker import Worker, WorkerState

from tui_lab.app.screens import screen_css
from tui_lab.app.widgets.sketch_plot import SketchPlot
from tui_lab.core.storage import LoadedSession
from tui_lab.errors import BadInput
from tui_lab.report.interpolation import draw_interpolation, sharpness_lines
from tui_lab.report.trajectory import draw_trajectory
from tui_lab.schema import Interpolation, Session
from tui_lab.schema.common import lr_text

MAX_PANELS = 4
INTERPOLATION_POINTS = 31  # α from -1 to 2 in steps of 0.1, as in Keskar et al.


def panel_title(session: Session) -> str:
    """``sgd b=8 · acc 93.1% · PCA 81+12%``: what tells runs apart first, as panels are narrow."""
    first, second = session.trajectory.explained_variance if session.trajectory else (0, 0)
    final = session.summary.final_accuracy if session.summary else None
    accuracy = f" · acc {final:.1%}" if final is not None else ""
    return f"{session.config.label()}{accuracy} · PCA {first:.0%}+{second:.0%}"


class SketchesScreen(Screen):
    """One trajectory panel per run; ``i`` swaps to (and back from) the interpolation view."""

    CSS = screen_css("sketches.tcss")
    HORIZONTAL_BREAKPOINTS: ClassVar = [(0, "-narrow"), (140, "-wide")]  # wide: one row
    BINDINGS: ClassVar = [
        Binding(
            "i",
            "interpolate",
            "Interpolate",
            tooltip="with exactly two runs shown: loss and accuracy on the line through their "
            "final weights, sharp or flat",
        ),
        Binding("m", "app.toggle_maximize", "Zoom", tooltip="the focused sketch fills the screen"),
        Binding("escape", "back", "Back", tooltip="to the sketches, then to where you were"),
    ]

    def __init__(self, sessions: Sequence[LoadedSession], **screen_kwargs: Any) -> None:
        """``sessions``: 1 to 4 runs that carry a trajectory sketch, left to right."""
        if not 1 <= len(sessions) <= MAX_PANELS:
            raise ValueError(f"show 1 to {MAX_PANELS} sessions, not {len(sessions)}")
        if any(item.session.trajectory is None for item in sessions):
            raise ValueError("every session shown needs a trajectory sketch")
        super().__init__(**screen_kwargs)
        self.runs = list(sessions)
        self.interpolation: Interpolation | None = None
        self.evaluating = False

    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial="sketches-view"):
            with Vertical(id="sketches-view"):
                with Grid(id="sketch-grid", classes=f"-panels-{len(self.runs)}"):
                    for index in range(len(self.runs)):
                        yield SketchPlot(id=f"sketch-{index}")
                yield Static(
                    "o start · x end = the final weights, at (0,0) · each panel: its own plane",
                    id="sketch-hint",
                )
            with Vertical(id="interpolation-view"):
                yield SketchPlot(id="interpolation-plot")
                yield Static(id="sharpness")
        yield Footer()

    def on_mount(self) -> None:
        for index, item in enumerate(self.runs):
            session = item.session
            plot = self.query_one(f"#sketch-{index}", SketchPlot)
            plot.border_title = Content(panel_title(session))
            plot.border_subtitle = f"lr {lr_text(session.config.lr)}"
            sketch, label = session.trajectory, session.config.label()
            plot.show(lambda plt, sketch=sketch, label=label: draw_trajectory(plt, sketch, label))
        self.query_one("#sketch-0").focus()

    @property
    def switcher(self) -> ContentSwitcher:
        return self.query_one(ContentSwitcher)

    def action_interpolate(self) -> None:
        if self.switcher.current == "interpolation-view":
            self.show_sketches()
            return
        if len(self.runs) != 2:  # the line runs between exactly two solutions: say so here
            self.query_one("#sketch-hint", Static).update(
                f"[b $warning]i draws the line between exactly two runs; {len(self.runs)} are "
                "shown.[/] Escape, tick two on Compare (space), then k and i."
            )
            return
        a, b = self.runs
        if self.interpolation is None and not self.evaluating:
            # here, not at the top: torch would delay every Compare screen by a second or more
            from tui_lab.analysis.interpolation import check_same_problem

            try:
                check_same_problem(a, b)
            except BadInput as error:
                self.query_one("#sketch-hint", Static).update(
                    Content.from_markup(
                        "[b $warning]Cannot interpolate:[/] $why", why=error.message
                    )
                )
                return
            self.start_interpolation()
        self.switcher.current = "interpolation-view"
        self.query_one("#interpolation-plot").focus()

    def start_interpolation(self) -> None:
        plot = self.query_one("#interpolation-plot", SketchPlot)
        plot.border_title = "between the two solutions"
        plot.loading = True
        self.evaluating = True
        self.query_one("#sharpness", Static).update(
            "Evaluating the networks on the line through both final weights (α from -1 to 2)… "
            "i or escape: back to the sketches meanwhile."
        )
        self.run_worker(
            self.evaluate_line,
            thread=True,
            exclusive=True,
            group="interpolation",
            exit_on_error=False,
        )

    def evaluate_line(self) -> Interpolation:
        """In a thread: rebuild model and data and evaluate the line (seconds on a CPU)."""
        from tui_lab.analysis.interpolation import DEFAULT_TRAIN_SAMPLES, compute
        from tui_lab.core.devices import resolve_device

        a, b = self.runs
        return compute(
            a,
            b,
            points=INTERPOLATION_POINTS,
            train_samples=DEFAULT_TRAIN_SAMPLES,
            device=resolve_device("auto"),
            data_dir=None,
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "interpolation" or not worker.is_finished:
            return
        self.evaluating = False
        if event.state == WorkerState.SUCCESS:
            self.show_interpolation(worker.result)
        elif event.state == WorkerState.ERROR:
            self.query_one("#interpolation-plot").loading = False
            error = worker.error
            message = error.describe() if isinstance(error, BadInput) else str(error)
            self.notify(message, title="Interpolation failed", severity="error", markup=False)
            self.show_sketches()

    def show_interpolation(self, interp: Interpolation) -> None:
        """Draw the line's loss and accuracy, with how much each solution's loss rises."""
        self.interpolation = interp
        plot = self.query_one("#interpolation-plot", SketchPlot)
        plot.loading = False
        plot.border_title = Content(f"α=0: {interp.label_a}   α=1: {interp.label_b}")
        plot.border_subtitle = "red: log10 loss · blue: accuracy · solid: train · dotted: val"
        plot.show(lambda plt: draw_interpolation(plt, interp))
        self.query_one("#sharpness", Static).update(Text("\n".join(sharpness_lines(interp))))

    def show_sketches(self) -> None:
        self.switcher.current = "sketches-view"
        self.query_one("#sketch-0").focus()

    def action_back(self) -> None:
        if self.switcher.current == "interpolation-view":
            self.show_sketches()
        else:
            self.dismiss()
