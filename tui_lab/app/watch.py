"""``bslab watch DIR``: the Train and Compare screens on a sessions folder other processes write.

The Train screen follows the folder's newest sweep (its live curves, each run's state, the
sweep's progress and ETA when the sweep saved its plan); Compare reads every session there. The
watcher only reads: it works on a read-only folder and never changes a file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.worker import get_current_worker

from tui_lab.app.app import BslabApp
from tui_lab.app.screens.compare import CompareScreen
from tui_lab.app.screens.train import TrainScreen
from tui_lab.app.watch_folder import FolderView, FolderWatcher
from tui_lab.app.worker import SweepEvents

TICK_SECONDS = 1.0  # a look at the folder at least this often, events or not (stale runs, NFS)
DEBOUNCE_MS = 300  # changes closer together than this are read in one look
COMPARE_RELOAD_SECONDS = 10.0  # Compare reads every file again: not more often than this


def folder_changes(folder: Path, stop: threading.Event) -> Iterator[None]:
    """Yields after each burst of changes in ``folder`` and at least every TICK_SECONDS, until
    ``stop`` is set. File-system events through watchfiles; where there are none (an
    unsupported or network file system, no inotify watches left), the ticks alone: polling."""
    try:
        import watchfiles

        for _ in watchfiles.watch(
            folder,
            stop_event=stop,
            rust_timeout=int(TICK_SECONDS * 1000),
            yield_on_timeout=True,
            debounce=DEBOUNCE_MS,
            recursive=False,
        ):
            yield
    except (OSError, RuntimeError):  # watchfiles could not watch the folder: poll it
        while not stop.wait(TICK_SECONDS):
            yield


class WatchScreen(TrainScreen):
    """The Train screen fed from a folder instead of a sweep of its own: nothing to skip or
    cancel, and a status line that says what the folder holds."""

    class Looked(Message):
        """A look at the folder, posted from the watching thread."""

        def __init__(self, view: FolderView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.view: FolderView | None = None
        self.looks = 0  # looks that found the folder changed: Compare reloads after them
        self._stop = threading.Event()
        self._warned: set[str] = set()

    def on_mount(self) -> None:
        self.watch_folder()

    def on_unmount(self) -> None:
        self._stop.set()

    @work(thread=True, exclusive=True, group="watch-folder", exit_on_error=False)
    def watch_folder(self) -> None:
        worker = get_current_worker()
        watcher = FolderWatcher(self.folder)

        def show(view: FolderView) -> None:
            self.post_message(self.Looked(view))

        show(watcher.look(show))
        for _ in folder_changes(self.folder, self._stop):
            if worker.is_cancelled:
                return
            view = watcher.look(show)
            if view.changed or view.moving:  # else the screen shows it already
                show(view)

    @on(Looked)
    def _looked(self, message: Looked) -> None:
        self.looks += bool(message.view.changed)
        self.view = message.view
        self._warn(message.view)
        self.post_message(SweepEvents(message.view.events))

    def _warn(self, view: FolderView) -> None:
        fresh = [text for text in view.warnings.values() if text not in self._warned]
        self._warned.update(fresh)
        if fresh:
            shown = "\n".join(fresh[:5]) + ("\n…" if len(fresh) > 5 else "")
            self.notify(
                shown, title=f"{len(fresh)} file(s) skipped", severity="warning", markup=False
            )

    @property
    def headline(self) -> str:
        """What the folder holds when no run of the followed sweep is training."""
        view, where = self.view, f"{self.folder}/"
        if view is None:
            return f"Reading {where}…"
        if view.reading is not None:
            done, total = view.reading
            return f"Reading {where}: {done:,}/{total:,} files…"
        if view.sweep is None:
            return f"No runs in {where} yet: watching for a sweep to start there."
        sweep, name = self.sweep, view.sweep.name
        if sweep.ended and sweep.cancelled:
            skipped = sum(run.status == "skipped" for run in sweep.runs)
            return f"[b]Sweep {name} ended[/b]: its process is gone" + (
                f"; {skipped} run{'s' * (skipped != 1)} never started" if skipped else ""
            )
        if sweep.ended or (view.sweep.plan is None and sweep.finished_runs == len(sweep.runs)):
            return (
                f"[b]Sweep {name}[/b]: {sweep.finished_runs} run"
                f"{'s' * (sweep.finished_runs != 1)} saved in {where} · F4 compares them"
            )
        stale = sum(run.status == "stale" for run in sweep.runs)
        if stale:
            return f"Sweep {name}: {stale} run{'s' * (stale != 1)} silent (stale) · {where}"
        return f"Sweep {name}: waiting for its next run to save · {where}"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("skip_run", "cancel_sweep"):
            return False  # another process trains: a watcher only looks
        return super().check_action(action, parameters)


class WatchApp(App[int]):
    """Train (F3) and Compare (F4) on one folder, read-only."""

    CSS_PATH = BslabApp.CSS_PATH
    TITLE = "bslab watch"
    BINDINGS: ClassVar = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1,question_mark", "help", "Help"),
        Binding("f3", "switch_mode('train')", "Train", show=False),
        Binding("f4", "switch_mode('compare')", "Compare", show=False),
    ]
    action_toggle_maximize = BslabApp.action_toggle_maximize
    action_help = BslabApp.action_help

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.sub_title = f"watching {self.folder}/ (read-only)"
        self.watch_screen = WatchScreen(self.folder)
        self.compare_screen: CompareScreen | None = None
        self._compared_looks = 0  # the watcher's looks that found changes, at Compare's reading
        self.add_mode("train", lambda: self.watch_screen)
        self.add_mode("compare", self._compare)

    def _compare(self) -> CompareScreen:
        self.compare_screen = CompareScreen([self.folder], select_all=False)
        self._compared_looks = self.watch_screen.looks
        return self.compare_screen

    def on_mount(self) -> None:
        self.switch_mode("train")
        self.set_interval(COMPARE_RELOAD_SECONDS, self._reload_compare, name="compare-reload")

    def _reload_compare(self) -> None:
        """Compare shows the runs as they were read: read again while it is shown and the
        folder has changed (it also reads again whenever it is shown anew)."""
        screen, looks = self.compare_screen, self.watch_screen.looks
        if screen is None or self.screen is not screen or looks == self._compared_looks:
            return
        self._compared_looks = looks
        screen.action_reload()
