"""The Train screen's progress panel: what runs now, how far it and the sweep are, and how fast."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Label, ProgressBar, Static

from tui_lab.app.live_sweep import LiveSweep
from tui_lab.app.widgets.lines import set_line
from tui_lab.report.vocabulary import run_text


def clock(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def fitting(parts: list[str], width: int) -> str:
    """The first of ``parts`` (Rich markup) that fit ``width`` cells, two spaces apart: the last
    ones are left out whole rather than cut, so no number loses its unit."""
    shown = parts[:1]
    for part in parts[1:]:
        line = "  ".join([*shown, part])
        if width and Text.from_markup(line).cell_len > width:
            break
        shown.append(part)
    return "  ".join(shown)


class SweepProgress(Vertical):
    """Three lines: the current run and its numbers, then the run's and the sweep's bars + ETA
    (of the whole sweep: runs still to start and runs training side by side included)."""

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
        self._eta: tuple[float | None, float] = (None, 0.0)  # (seconds left, when estimated)
        self._waiting = False  # a sweep is under way: its ETA is shown

    def on_mount(self) -> None:
        self.set_interval(1.0, self._count_down, name="sweep-eta-countdown")

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

    def show(self, sweep: LiveSweep, headline: str | Content, note: str = "") -> None:
        """Redraw from the sweep's state; ``headline`` is the status for when no run is active,
        ``note`` what was asked of the running run (skip, cancel) and is on its way."""
        run = sweep.running
        status = self.query_one("#progress-status", Static)
        if run is None:
            set_line(status, headline)
            set_line(self.query_one("#run-eta", Static), "")
        else:
            index = sweep.current + 1 if sweep.current is not None else 0
            parts = [
                *([f"[b $warning]{note}[/]"] if note else []),
                f"[b]Run {index}/{len(sweep.runs)}[/b] {run_text(run.config)}",
                f"epoch {max(run.epoch, 1)}/{run.config.epochs}",
            ]
            if run.loss is not None:
                parts.append(f"loss {run.loss:.3g}")
            if run.accuracy is not None:
                parts.append(f"acc {run.accuracy:.1%}")
            if run.samples_per_second:
                parts.append(f"{run.samples_per_second:,.0f} samples/s")
            set_line(status, fitting(parts, status.size.width))
            speed = run.samples_per_second
            remaining = max(0, run.samples_total - run.samples) / speed if speed else None
            set_line(self.query_one("#run-eta", Static), f"ETA {clock(remaining)}")
        done = 1.0 if sweep.ended and sweep.runs else 0.0  # no run left, none to come
        self.query_one("#run-bar", ProgressBar).update(progress=run.fraction if run else done)
        self.query_one("#sweep-bar", ProgressBar).update(progress=sweep.fraction)
        self._estimate_sweep(sweep)

    def _estimate_sweep(self, sweep: LiveSweep) -> None:
        """Take a fresh estimate of the whole sweep (``LiveSweep.eta_seconds``) and show it."""
        self._eta = (sweep.eta_seconds(), time.monotonic())
        self._waiting = bool(sweep.runs) and not (sweep.ended or sweep.failure)
        eta = self.query_one("#sweep-eta", Static)
        left = sum(run.status in ("pending", "running") for run in sweep.runs)
        eta.tooltip = (
            f"the whole sweep: {left} run{'s' * (left != 1)} to finish, up to "
            f"{max(1, round(sweep.slots))} at once; from each run's samples/s"
            if self._waiting
            else None
        )
        self._count_down()

    def _count_down(self) -> None:
        """The estimate less the time since it was taken: it moves between training reports
        (evaluation, a run starting), never below zero."""
        seconds, taken = self._eta
        text = ""
        if self._waiting and seconds is None:
            text = "estimating…"
        elif self._waiting and seconds is not None:
            left = seconds - (time.monotonic() - taken)
            text = f"ETA ~{clock(left)}" if left >= 1 else "finishing…"
        set_line(self.query_one("#sweep-eta", Static), text)
