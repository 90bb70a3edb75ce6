"""Find the largest batch that fits, from Setup: the finder of ``bslab find-batch`` in the app.

The search runs in a thread worker (training steps release the GIL) and reports every size as it
is tried, with its throughput or that it ran out of memory. Closing the dialog cancels it: the
worker checks between trials, so quitting waits for one trial at most. ``enter`` hands the
largest size back to Setup's batch-size field.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from tui_lab.analysis.batch_finder import find_largest_batch, training_trial
from tui_lab.app.worker import describe_failure
from tui_lab.report.batch_finder import trials_table, verdict
from tui_lab.run.recorder import trial_busy
from tui_lab.run.sweep import prepare_sweep
from tui_lab.schema import TrainPreset
from tui_lab.schema.analysis import BatchFinderResult, BatchTrial


class SearchCancelled(Exception):
    """Raised between trials once the dialog is closed; not an out-of-memory error."""


class BatchFinderScreen(ModalScreen[int | None]):
    """Dismissed with the largest batch that fits (enter), or None (escape)."""

    DEFAULT_CSS = """
    BatchFinderScreen { align: center middle; }
    #finder-dialog {
        width: 74;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $accent;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        background: $surface;
        padding: 0 1;
    }
    #finder-dialog Static { height: auto; }
    #finder-verdict { display: none; }
    """
    BINDINGS: ClassVar = [
        Binding("enter", "use", "Use it", tooltip="put the largest size into the batch sizes"),
        Binding("escape", "close", "Close", tooltip="stop searching and close"),
    ]

    class Searching(Message):
        """What is being tried now; ``limit`` once known (the training-set size)."""

        def __init__(self, what: str, limit: int | None = None) -> None:
            super().__init__()
            self.what, self.limit = what, limit

    class Tried(Message):
        def __init__(self, trial: BatchTrial) -> None:
            super().__init__()
            self.trial = trial

    class Done(Message):
        def __init__(self, result: BatchFinderResult | None, message: str) -> None:
            super().__init__()
            self.result, self.message = result, message

    def __init__(self, preset: TrainPreset) -> None:
        super().__init__()
        self.preset = preset
        self.trials: list[BatchTrial] = []
        self.result: BatchFinderResult | None = None
        self.limit = 1

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="finder-dialog") as dialog:
            dialog.border_title = "Largest batch that fits"
            dialog.border_subtitle = "enter use it · esc close"
            yield Static("Loading the data and building the model…", id="finder-status")
            yield Static(id="finder-verdict")  # on top when done: the answer first
            yield Static(id="finder-trials")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.search_worker = self.search()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def search(self) -> None:
        worker = get_current_worker()
        try:
            prepared = prepare_sweep(self.preset, out_dir=Path(tempfile.gettempdir()))
            config, n_train = prepared.runs[0], prepared.data.n_train
            trial = training_trial(config, prepared.data)
            what = f"{config.dataset}/{config.model}, {config.optimizer.name}, on {config.device}"
            self.post_message(self.Searching(f"{what}: batch sizes 1 to {n_train:,}", n_train))

            def watched(batch_size: int) -> float:
                if worker.is_cancelled:
                    raise SearchCancelled
                self.post_message(self.Searching(f"{what}: training at batch {batch_size:,}…"))
                return trial(batch_size)

            result = find_largest_batch(
                watched,
                limit=n_train,
                busy=trial_busy(config.device),
                on_trial=lambda tried: self.post_message(self.Tried(tried)),
            )
        except SearchCancelled:
            return
        except Exception as error:  # bad data folder, a device that went away: say so, no crash
            self.post_message(self.Done(None, f"[b $error]{describe_failure(error)}[/]"))
            return
        self.post_message(self.Done(result, f"{what}\n" + verdict(result, config.device, n_train)))

    @on(Searching)
    def _searching(self, message: Searching) -> None:
        self.limit = message.limit or self.limit
        self.query_one("#finder-status", Static).update(message.what)

    @on(Tried)
    def _tried(self, message: Tried) -> None:
        self.trials.append(message.trial)
        self._show_trials(self.trials)

    @on(Done)
    def _done(self, message: Done) -> None:
        self.result = message.result
        self.query_one("#finder-status", Static).display = False
        if message.result is not None:
            self._show_trials(message.result.trials)
        answer = self.query_one("#finder-verdict", Static)
        answer.update(message.message)
        answer.display = True
        self.refresh_bindings()

    def _show_trials(self, trials: list[BatchTrial]) -> None:
        fitting = [t.batch_size for t in trials if t.fits]
        so_far = BatchFinderResult(
            largest_batch_size=max(fitting, default=None),
            limit=self.limit,
            reached_limit=False,
            trials=trials,
        )
        self.query_one("#finder-trials", Static).update(trials_table(so_far))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "use":
            return self.largest is not None or None  # dimmed until a size is known
        return True

    @property
    def largest(self) -> int | None:
        return self.result.largest_batch_size if self.result else None

    def action_use(self) -> None:
        if self.largest is not None:
            self.dismiss(self.largest)

    def action_close(self) -> None:
        self.workers.cancel_node(self)
        self.dismiss(None)
