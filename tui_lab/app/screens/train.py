"""Watch a sweep train: live loss, accuracy and gradient noise scale of every run, progress,
and stop/skip/cancel.

Events from the worker only update ``LiveSweep``; the widgets redraw from it on a timer (and
the charts throttle themselves), so the UI does a bounded amount of work however fast
training reports.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import ClassVar

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Footer, Static
from textual.worker import WorkerError

from tui_lab.app.live_sweep import LiveSweep
from tui_lab.app.screens import screen_css
from tui_lab.app.screens.charts import CurvesScreen
from tui_lab.app.screens.confirm import CANCEL, SKIP, Confirm
from tui_lab.app.widgets.curves import (
    FOCUS_BINDING,
    CurvesChart,
    RunColors,
)
from tui_lab.app.widgets.lines import set_line
from tui_lab.app.widgets.noise_chart import NoiseScaleChart
from tui_lab.app.widgets.run_progress import SweepProgress
from tui_lab.app.widgets.run_table import RunTable
from tui_lab.app.worker import (
    DEFAULT_MODE,
    SweepEvents,
    SweepFailed,
    SweepFinished,
    SweepRequest,
    SweepRunner,
    WorkerMode,
)
from tui_lab.report.comparison import noise_interval_text, noise_verdict
from tui_lab.report.vocabulary import status_word
from tui_lab.run.events import RunStarted
from tui_lab.schema import Session

REFRESH_SECONDS = 0.5  # progress, table and the critical batch line: twice a second


class TrainScreen(CurvesScreen):
    """Owns the sweep in progress (its runner), so it survives switching screens."""

    CSS = screen_css("train.tcss")
    HORIZONTAL_BREAKPOINTS: ClassVar = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar = [(0, "-short"), (28, "-tall")]  # 24 rows: a shorter table
    BINDINGS: ClassVar = [
        Binding("x", "cycle_x_axis", "X-axis", tooltip="epochs → samples seen → seconds"),
        Binding("w", "toggle_raw", "Raw loss", tooltip="show or hide the unsmoothed loss"),
        Binding(
            "b",
            "toggle_noise",
            "Noise",
            tooltip="swap the accuracy chart for the gradient noise scale (both shown when wide)",
        ),
        Binding(
            "e",
            "toggle_seeds",
            "Seeds",
            tooltip="seeds of one configuration: their mean and min–max band, or every seed",
        ),
        FOCUS_BINDING,
        Binding(
            "n",
            "skip_run",
            "Skip",
            tooltip="stop the running run (the selected one when several run; saved) and go on",
        ),
        Binding(
            "c",
            "cancel_sweep",
            "Cancel",
            tooltip="stop every running run (each saved) and start no more",
        ),
        Binding("m", "app.toggle_maximize", "Zoom", show=False),
    ]

    def __init__(self, worker_mode: WorkerMode = DEFAULT_MODE) -> None:
        super().__init__()
        self.worker_mode = worker_mode
        self.sweep = LiveSweep()
        self.runner: SweepRunner | None = None
        self.run_colors = RunColors()
        self.stopping = ""  # what the user asked for and is on its way: "skip" or "cancel"
        self.skip_index: int | None = None  # the run `n` stops, once confirmed
        self._dirty = False

    def compose(self) -> ComposeResult:
        with Vertical(id="progress-area"):
            yield SweepProgress(id="progress")
            yield Static(id="critical-batch")
        with Horizontal(id="charts"):
            yield CurvesChart("loss", self.run_colors, id="loss-chart")
            yield CurvesChart("accuracy", self.run_colors, id="accuracy-chart")
            yield NoiseScaleChart(self.run_colors, id="noise-chart")
        yield RunTable(self.run_colors, id="runs")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self._refresh_if_dirty, name="train-refresh")
        self._redraw()

    @property
    def running(self) -> bool:
        return self.runner is not None and self.runner.running

    def start(self, request: SweepRequest) -> bool:
        """Start a sweep unless one is running; False (and a notice) if one is."""
        if self.running:
            self.notify("A sweep is already running: cancel it first (c).", severity="warning")
            return False
        self.sweep = LiveSweep()
        self.run_colors = RunColors()
        for widget in self.query(CurvesChart):
            widget.run_colors = self.run_colors
        self.query_one(RunTable).run_colors = self.run_colors
        self.stopping = ""
        self.runner = SweepRunner(self, request, self.worker_mode)
        self.runner.start()
        self._redraw()
        self.refresh_bindings()
        return True

    @on(SweepEvents)
    def _events(self, message: SweepEvents) -> None:
        for event in message.events:
            self.sweep.apply(event)
            if self.stopping == "skip" and isinstance(event, RunStarted):
                self.stopping = ""  # the skipped run is saved; the next one runs
        self._update_charts()
        self._dirty = True

    def _update_charts(self) -> None:
        for chart in self.query(CurvesChart):
            if isinstance(chart, NoiseScaleChart):
                runs = self.sweep.runs
                chart.update_runs([(r.session, r.noise_points()) for r in runs if r.session])
            else:
                chart.update_sessions(self.sweep.sessions())

    @on(SweepFailed)
    def _failed(self, message: SweepFailed) -> None:
        self.sweep.failure = message.message
        self.notify(
            message.message, title="Sweep failed", severity="error", timeout=10, markup=False
        )
        self._dirty = True

    @on(SweepFinished)
    def _finished(self) -> None:
        self.stopping = ""
        self.sweep.ended = True
        self._redraw()
        self.refresh_bindings()

    @property
    def headline(self) -> str | Content:
        """The status line when no run is training: what the sweep is doing, or how it ended
        (short: the table has each run's outcome). A failure's text and a folder are data, not
        markup."""
        sweep = self.sweep
        if self.runner is None:
            return "No sweep yet: set one up on the Setup screen (F2) and start it."
        if sweep.failure:
            return Content.from_markup("[b $error]Failed:[/] $why", why=sweep.failure)
        if sweep.ended:
            saved, verdict = len(sweep.sessions()), "cancelled" if sweep.cancelled else "completed"
            return Content.from_markup(
                f"[b]Sweep {verdict}[/b]: {saved} run{'s' * (saved != 1)} saved in $folder/ · "
                "F4 compares them",
                folder=str(self.runner.request.out_dir),
            )
        if self.stopping == "cancel":
            return "Cancelling: saving the run as interrupted…"
        if not sweep.runs:
            return f"Preparing {self.runner.request.preset.name}: loading data, building runs…"
        ended, total = sweep.finished_runs, len(sweep.runs)
        if ended == total:
            return f"All {total} runs ended: finishing the sweep…"
        if not ended:
            return f"Starting the first of {total} run{'s' * (total != 1)}…"
        return f"{ended}/{total} runs ended: starting the next…"

    @property
    def saved_text(self) -> str | None:
        """What this app's sweep left on disk, for the terminal once the app has gone; the
        command on a line of its own, to copy whole. None if no sweep was started."""
        if self.runner is None:
            return None
        out_dir = self.runner.request.out_dir
        statuses = Counter(run.status for run in self.sweep.runs if run.session is not None)
        not_started = len(self.sweep.runs) - sum(statuses.values())
        parts = [f"{n} {status_word(status)}" for status, n in statuses.items()]
        if not_started:
            parts.append(f"{not_started} not started")
        saved = sum(statuses.values())
        if not saved:
            return f"No run saved in {out_dir}/" + (f" ({parts[0]})." if parts else ".")
        return (
            f"Saved {saved} run{'s' * (saved != 1)} in {out_dir}/ ({', '.join(parts)}); "
            f"compare them with:\n  bslab compare {out_dir}"
        )

    @property
    def redraw_pending(self) -> bool:
        """Events taken in but not drawn yet (they are within REFRESH_SECONDS)."""
        return self._dirty

    def _refresh_if_dirty(self) -> None:
        if self._dirty:
            self._redraw()

    def _redraw(self) -> None:
        self._dirty = False
        note = {"skip": "Skipping…", "cancel": "Cancelling…"}.get(self.stopping, "")
        self.query_one(SweepProgress).show(self.sweep, self.headline, note)
        self._show_critical_batch()
        self.query_one(RunTable).show(self.sweep.runs)

    def _show_critical_batch(self) -> None:
        """The running run's latest estimate, else the last one measured in the sweep (short
        runs may have only the one where they reached the target); the line names the run and
        epoch it comes from, so an older value is never taken for the running run's."""
        line = self.query_one("#critical-batch", Static)
        run = self.sweep.running
        measured = [r for r in self.sweep.runs if r.noise_scale is not None]
        if (run is None or run.noise_scale is None) and measured:
            run = measured[-1]
        line.display = bool(self.sweep.runs)
        if run is None:
            return
        point = run.noise_scale
        if point is None:
            why = f"not measured: {run.noise_note}" if run.noise_note else "not measured yet"
            set_line(line, f"critical batch size ≈ [dim]{escape(why)}[/]")
            return
        verdict = noise_verdict(point, run.n_train)
        set_line(
            line,
            f"critical batch size ≈ [b]{noise_interval_text(point)}[/]"
            + (f" [b $warning]{verdict}[/]" if verdict else "")
            + f"  [dim]{run.config.label()} at epoch {point.epoch:.1f}[/]"
            + (f"  [dim]others skipped: {escape(run.noise_note)}[/]" if run.noise_note else ""),
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("skip_run", "cancel_sweep"):
            return self.running or None  # shown dimmed when nothing runs
        return True

    def chart_sessions(self) -> list[Session]:
        return self.sweep.sessions()

    def action_toggle_noise(self) -> None:
        """Narrow: the noise-scale chart in the accuracy chart's place, or back. Wide, where all
        three are shown, it says so rather than change nothing."""
        if self.has_class("-wide"):
            self.notify("b: the noise scale is already shown beside the accuracy at this width")
            return
        self.toggle_class("-show-noise")

    def action_skip_run(self) -> None:
        """Asks first: the run is cut short (saved as interrupted), the sweep goes on. With
        several runs training it stops the selected one, or the only one."""
        if self.runner is None or not self.running:
            return
        running = self.sweep.running_indices()
        selected = self.query_one(RunTable).cursor_row
        if selected not in running and len(running) > 1:
            self.notify("Several runs are training: select one in the run table, then n.")
            return
        self.skip_index = selected if selected in running else next(iter(running), None)
        self._confirmed(SKIP, "skip")

    def action_cancel_sweep(self) -> None:
        """Asks first, as quitting does: every running run is cut short and no more start."""
        self._confirmed(CANCEL, "cancel")

    def _confirmed(self, question: tuple[str, str], request: str) -> None:
        if not self.running:
            return

        def answered(yes: bool | None) -> None:
            if not (yes and self.runner is not None and self.running):
                return
            if request == "skip":
                self.runner.skip_run(self.skip_index)
            else:
                self.runner.cancel()
            self.stopping = request
            self._redraw()

        self.app.push_screen(Confirm(*question), answered)

    async def stop_and_wait(self) -> None:
        """Cancel the sweep and wait until the current run has been saved as interrupted."""
        if self.runner is not None and self.running:
            self.runner.cancel()
            with contextlib.suppress(WorkerError):
                await self.runner.wait()
