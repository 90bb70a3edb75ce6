"""Compare saved runs: pick session files, overlay their curves, sort the experiment's table, and
open the scaling analysis (steps to target, wall-time optimum) of the ticked runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Footer, Input, SelectionList
from textual.widgets.selection_list import Selection

from tui_lab.app.screens import screen_css
from tui_lab.app.screens.analysis import AnalysisScreen
from tui_lab.app.screens.charts import CurvesScreen
from tui_lab.app.screens.sketches import MAX_PANELS, SketchesScreen
from tui_lab.app.widgets.comparison import ComparisonTable
from tui_lab.app.widgets.curves import (
    FOCUS_BINDING,
    CurvesChart,
    RunColors,
    run_label,
)
from tui_lab.core.storage import LoadedSession, load_sessions
from tui_lab.errors import BadInput
from tui_lab.report.comparison import run_order
from tui_lab.schema import Session
from tui_lab.settings import SESSIONS_DIR

AUTO_TICK_LIMIT = 24  # ``compare --tui DIR`` ticks every run up to this many; else the newest sweep
PROGRESS_SECONDS = 0.1  # how often reading thousands of files reports how far it is


def latest_sweep(loaded: list[LoadedSession]) -> list[LoadedSession]:
    """The runs of the newest preset: what a user who just ran a sweep wants to see first."""
    if not loaded:
        return []
    newest = max(loaded, key=lambda item: item.session.created).session.config.preset_name
    return [item for item in loaded if item.session.config.preset_name == newest]


# What one reading found: the sessions, the files skipped (why), the paths that do not exist.
Loaded = tuple[list[LoadedSession], list[str], list[Path]]


class CompareScreen(CurvesScreen):
    """Session picker on the left; loss or accuracy chart (both when wide) on the right, and the
    sortable table below, whose batch cells carry the runs' colours: the charts' legend.

    Built for thousands of sessions: files are read in a thread (with progress), the picker is
    filled and ticked in one go, and a burst of ticks redraws charts and table once.
    """

    CSS = screen_css("compare.tcss")
    HORIZONTAL_BREAKPOINTS: ClassVar = [(0, "-narrow"), (140, "-wide")]  # wide: both charts
    BINDINGS: ClassVar = [
        Binding("x", "cycle_x_axis", "X-axis", tooltip="epochs → samples seen → seconds"),
        Binding("v", "toggle_chart", "Loss/acc", tooltip="loss or accuracy chart (both if wide)"),
        Binding(
            "e",
            "toggle_seeds",
            "Seeds",
            tooltip="seeds of one configuration: their mean and min–max band, or every seed",
            show=False,  # the charts' title names the key when there are seeds to switch
        ),
        FOCUS_BINDING,
        Binding(
            "w", "toggle_raw", "Raw loss", tooltip="show or hide the unsmoothed loss", show=False
        ),
        Binding(
            "k",
            "sketches",
            "Sketches",
            tooltip="2 to 4 ticked runs' paths side by side; i then draws the line between two",
        ),
        Binding(
            "g",
            "analysis",
            "Analysis",
            tooltip="steps to target and the wall-time optimum against batch size, ticked runs",
        ),
        Binding(
            "m",
            "app.toggle_maximize",
            "Zoom",
            tooltip="focused chart or table fills the screen",
            show=False,
        ),
        Binding("a", "toggle_all", "Tick all/none", show=False),
        Binding("o", "open_folder", "Open a folder of sessions", show=False),
        Binding("escape", "close_folder_field", "Close the folder field", show=False),
        Binding("r", "reload", "Reload session files", show=False),
        Binding("p", "toggle_picker", "Show/hide the session picker", show=False),
    ]

    class Reading(Message):
        """Files read so far, posted from the reading thread."""

        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done, self.total = done, total

    class Read(Message):
        """Every file under the paths read: what was found, what was skipped, and the paths
        that do not exist (not a skipped file: a folder not made yet, or a typo)."""

        def __init__(self, found: Loaded, tick: str) -> None:
            super().__init__()
            self.loaded, self.warnings, self.missing = found
            self.tick = tick

    def __init__(
        self, paths: list[Path] | None = None, select_all: bool | None = None, **screen_kwargs
    ) -> None:
        """``select_all``: tick every run found (default: when paths are given, as from
        ``bslab compare --tui PATH...``, up to AUTO_TICK_LIMIT); otherwise the newest sweep."""
        super().__init__(**screen_kwargs)
        self.paths = [Path(p) for p in paths or []] or [SESSIONS_DIR]
        self.select_all = bool(paths) if select_all is None else select_all
        self.sessions: dict[str, LoadedSession] = {}  # by path, in the picker's order
        self.warned: set[str] = set()  # each broken file is reported once, not on every reload
        self.run_colors = RunColors()
        self.ready = False  # the first reading is done and shown
        self._redraw_pending = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-body"):
            with Vertical(id="picker"):
                # hidden and disabled until o: a text box there would swallow space and keys
                yield Input(placeholder="folder to open, then enter", id="folder", disabled=True)
                yield SelectionList[str](id="session-list")
            with Container(id="charts"):
                yield CurvesChart("loss", self.run_colors, id="loss-chart")
                yield CurvesChart("accuracy", self.run_colors, id="accuracy-chart")
        yield ComparisonTable(self.run_colors, id="comparison")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#picker").border_title = "sessions"
        self.query_one("#picker").border_subtitle = "space ticks · a all"
        self.picker.focus()
        self.read(self.paths, tick="first")

    @property
    def picker(self) -> SelectionList[str]:
        return self.query_one("#session-list", SelectionList)

    @property
    def selected_sessions(self) -> list[Session]:
        """The ticked runs, in the picker's order."""
        return [item.session for item in self.selected_items]

    @property
    def selected_items(self) -> list[LoadedSession]:
        chosen = set(self.picker.selected)
        return [item for key, item in self.sessions.items() if key in chosen]

    # Reading session files

    @work(thread=True, exclusive=True, group="read-sessions")
    def read(self, paths: list[Path], tick: str) -> None:
        """Read in a thread: thousands of files take seconds, and the screen shows how far."""
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            if time.monotonic() - last >= PROGRESS_SECONDS:
                last = time.monotonic()
                self.post_message(self.Reading(done, total))

        self.post_message(self.Read(load_all(paths, progress), tick))

    def on_compare_screen_reading(self, message: Reading) -> None:
        self.query_one(
            "#picker"
        ).border_title = f"reading {message.done:,}/{message.total:,} sessions…"

    def on_compare_screen_read(self, message: Read) -> None:
        """Fill the picker in one go, in run order, with the runs to tick already ticked."""
        known = set(self.sessions)
        for item in message.loaded:
            self.sessions[str(item.path)] = item
        rank = {
            id(s): i for i, s in enumerate(run_order([i.session for i in self.sessions.values()]))
        }
        self.sessions = dict(sorted(self.sessions.items(), key=lambda kv: rank[id(kv[1].session)]))
        ticked = set(self.picker.selected)
        if message.tick == "first":
            ticked = {str(item.path) for item in self.first_ticks(message.loaded)}
        highlighted = self.picker.highlighted
        with self.picker.prevent(SelectionList.SelectedChanged):
            self.picker.clear_options()
            self.picker.add_options(
                Selection(self._prompt(item), key, key in ticked)
                for key, item in self.sessions.items()
            )
        if self.picker.option_count:
            self.picker.highlighted = min(highlighted or 0, self.picker.option_count - 1)
        self.query_one("#picker").border_title = f"sessions ({len(self.sessions):,})"
        self._report_skipped(message.warnings)
        missing = ", ".join(map(str, message.missing))
        if message.tick == "first" and not self.sessions:
            verb = "does" if len(message.missing) == 1 else "do"
            where = (
                f": {missing} {verb} not exist"
                if missing
                else " in " + ", ".join(map(str, self.paths))
            )
            self.notify(
                f"No sessions{where}. Run a sweep, or press o to open a folder.", markup=False
            )
        elif missing and missing not in self.warned:
            self.warned.add(missing)
            self.notify(f"{missing}: no such file or folder", severity="warning", markup=False)
        self.show_selected()
        if message.tick == "keep":  # r, a folder opened, back from training: what reading found
            new = len(set(self.sessions) - known)
            self.say(f"read {len(message.loaded):,} session files: {new:,} new")
        self.ready = True

    def first_ticks(self, loaded: list[LoadedSession]) -> list[LoadedSession]:
        """Every run named on the command line (a few dozen at most), else the newest sweep."""
        if self.select_all and len(loaded) <= AUTO_TICK_LIMIT:
            return loaded
        newest = latest_sweep(loaded)
        if self.select_all:
            self.notify(
                f"{len(loaded):,} runs: ticked the newest sweep's {len(newest)}; "
                "a ticks all, space one."
            )
        return newest

    def _report_skipped(self, warnings: list[str]) -> None:
        warnings = [w for w in warnings if w not in self.warned]
        self.warned.update(warnings)
        if warnings:
            shown = "\n".join(warnings[:5]) + ("\n…" if len(warnings) > 5 else "")
            self.notify(
                shown, title=f"{len(warnings)} file(s) skipped", severity="warning", markup=False
            )

    @staticmethod
    def _prompt(item: LoadedSession) -> Content:
        """``sgd b=32 lr=0.05 s=1 · preset``: what tells runs apart first, so that a narrow
        picker cuts the preset's name, not the label (the colour is in the table: the picker
        never redraws). Textual's own Content: a Rich Text is converted with a theme lookup per
        item, a fifth of the time to list 2,000 runs (``benchmarks/many_sessions.py``)."""
        session = item.session
        return Content.assemble(run_label(session), (f" · {session.config.preset_name}", "dim"))

    # Showing the ticked runs

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        """Ticks come in bursts (a, or holding space): redraw once, after the burst."""
        if not self._redraw_pending:
            self._redraw_pending = True
            self.call_after_refresh(self.show_selected)

    def chart_sessions(self) -> list[Session]:
        return self.selected_sessions

    def say(self, text: str) -> None:
        """A word about the last key, in place: on the table's frame, until the next tick."""
        self.query_one("#comparison").border_subtitle = Content.from_markup(
            "[b $warning]$text[/]", text=text
        )

    def show_selected(self) -> None:
        self._redraw_pending = False
        self.query_one("#comparison").border_subtitle = ""
        sessions = self.selected_sessions
        self.run_colors.retain(sessions)
        for session in sessions:  # colours claimed in run order, whatever the tick order
            self.run_colors(session)
        for chart in self.query(CurvesChart):
            chart.update_sessions(sessions)
        self.query_one(ComparisonTable).show_sessions(sessions)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        folder = Path(event.value.strip()).expanduser()
        if not folder.is_dir():
            self.notify(f"{folder}: not a folder", severity="error", markup=False)
            return
        if folder not in self.paths:
            self.paths.append(folder)
        self.action_close_folder_field()
        self.read([folder], tick="keep")

    def action_toggle_chart(self) -> None:
        self.toggle_class("-show-accuracy")

    def action_toggle_all(self) -> None:
        if len(self.picker.selected) == self.picker.option_count:
            self.picker.deselect_all()
        else:
            self.picker.select_all()

    def action_open_folder(self) -> None:
        self.query_one("#picker").display = True
        folder = self.query_one("#folder", Input)
        folder.display, folder.disabled = True, False
        folder.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Escape closes the folder field only while it is open: otherwise it is not a key."""
        if action == "close_folder_field":
            return self.query_one("#folder", Input).display
        return True

    def action_close_folder_field(self) -> None:
        """Escape from the folder field (or enter): back to the list, keys are keys again."""
        folder = self.query_one("#folder", Input)
        folder.value, folder.display, folder.disabled = "", False, True
        self.picker.focus()

    def on_screen_resume(self) -> None:
        if self.focused is None or self.focused.disabled:
            self.picker.focus()
        if self.ready:  # back from training: pick up the runs written meanwhile
            self.action_reload()

    def action_reload(self) -> None:
        """Read every open folder again: runs still training elsewhere have new epochs."""
        self.read(self.paths, tick="keep")

    def action_sketches(self) -> None:
        """Open the ticked runs' trajectory sketches; say in place what is missing."""
        chosen = self.selected_items
        if not 2 <= len(chosen) <= MAX_PANELS:
            self.say(
                f"k sketches 2 to {MAX_PANELS} ticked runs ({len(chosen)} ticked): space ticks"
            )
            return
        drawable = [item for item in chosen if item.session.trajectory is not None]
        left_out = [run_label(item.session) for item in chosen if item.session.trajectory is None]
        if not drawable:
            self.notify(
                "None of the ticked runs has a trajectory sketch (diverged, failed, or recorded "
                "with sketching off).",
                severity="warning",
            )
            return
        if left_out:
            self.notify(f"No sketch for: {', '.join(left_out)}", severity="warning")
        self.app.push_screen(SketchesScreen(drawable))

    def action_analysis(self) -> None:
        """Open the scaling analysis of the ticked runs (grouped by all but the batch size)."""
        sessions = self.selected_sessions
        if not sessions:
            self.say("g analyses the ticked runs: tick a sweep's runs (space, a for all)")
            return
        self.app.push_screen(AnalysisScreen(sessions))

    def action_toggle_picker(self) -> None:
        picker = self.query_one("#picker")
        picker.display = not picker.display
        (self.picker if picker.display else self.query_one(ComparisonTable)).focus()


def load_all(paths: list[Path], progress: Callable[[int, int], None] | None = None) -> Loaded:
    """Every session under the paths; a broken file, even one named directly, is a warning;
    and the paths that do not exist."""
    loaded, warnings, missing = [], [], []
    for path in paths:
        if not path.exists():
            missing.append(path)
            continue
        try:
            found, skipped = load_sessions([path], progress)
        except BadInput as error:
            found, skipped = [], [f"skipped {error.describe()}"]
        loaded += found
        warnings += skipped
    return loaded, warnings, missing
