"""The Train screen's progress panel: what runs now, how far it and the sweep are, and how fast."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, Static

from tui_lab.app.live_sweep import LiveSweep


def clock(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


class SweepProgress(Vertical):
    """Three lines: the current run and its numbers, then the run's and the sweep's bars + ETA."""

    DEFAULT_CSS = """
    SweepProgress { height: auto; padding: 0 1; }
    SweepProgress #progress-status { height: 1; }
    SweepProgress Horizontal { height: 1; }
    SweepProgress Label { width: 6; color: $text-muted; }
    SweepProgress ProgressBar { width: 1fr; }
    SweepProgress ProgressBar Bar { width: 1fr; }
    SweepProgress .eta { width: 13; text-align: right; }
    """

    def __init__(self, **widget_kwargs) -> None:
        super().__init__(**widget_kwargs)
        self.sweep_started_at: float | None = None

    def compose(self) -> ComposeResult:
        yield Static("No sweep yet: set one up on the Setup screen (F2).", id="progress-status")
        with Horizontal():
            yield Label("run")
            yield ProgressBar(total=1.0, show_eta=False, id="run-bar")
            yield Static("", classes="eta", id="run-eta")
        with Horizontal():
            yield Label("sweep")
            yield ProgressBar(total=1.0, show_eta=False, id="sweep-bar")
            yield Static("", classes="eta", id="sweep-eta")

    def show(self, sweep: LiveSweep, headline: str, note: str = "") -> None:
        """Redraw from the sweep's state; ``headline`` is the status for when no run is active,
        ``note`` what was asked of the running run (skip, cancel) and is on its way."""
        if sweep.runs and self.sweep_started_at is None:
            self.sweep_started_at = time.monotonic()
        run = sweep.running
        status = self.query_one("#progress-status", Static)
        if run is None:
            status.update(headline)
            self.query_one("#run-eta", Static).update("")
        else:
            index = sweep.current + 1 if sweep.current is not None else 0
            parts = [
                *([f"[b $warning]{note}[/]"] if note else []),
                f"[b]Run {index}/{len(sweep.runs)}[/b] {run.config.label()} lr={run.config.lr:.3g}",
                f"epoch {max(run.epoch, 1)}/{run.config.epochs}",
            ]
            if run.loss is not None:
                parts.append(f"loss {run.loss:.3g}")
            if run.accuracy is not None:
                parts.append(f"acc {run.accuracy:.1%}")
            if run.samples_per_second:
                parts.append(f"{run.samples_per_second:,.0f} samples/s")
            status.update("  ".join(parts))
            speed = run.samples_per_second
            remaining = (run.samples_total - run.samples) / speed if speed else None
            self.query_one("#run-eta", Static).update(f"ETA {clock(remaining)}")
        self.query_one("#run-bar", ProgressBar).update(progress=run.fraction if run else 0.0)
        self.query_one("#sweep-bar", ProgressBar).update(progress=sweep.fraction)
        self.query_one("#sweep-eta", Static).update(self._sweep_eta(sweep))

    def _sweep_eta(self, sweep: LiveSweep) -> str:
        """Elapsed time scaled by the share still to do: rough, as later runs differ in speed."""
        if sweep.ended or self.sweep_started_at is None:
            return ""
        done = sweep.fraction
        elapsed = time.monotonic() - self.sweep_started_at
        return f"ETA ~{clock(elapsed * (1 - done) / done if done > 0.001 else None)}"
