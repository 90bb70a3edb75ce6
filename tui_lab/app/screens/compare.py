"""Compare saved runs: pick session files, overlay their curves, sort the experiment's table, and
open the scaling analysis (steps to target, wall-time optimum) of the ticked runs."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, SelectionList
from textual.widgets.selection_list import Selection

from tui_lab.app.screens.analysis import AnalysisScreen
from tui_lab.app.screens.sketches import MAX_PANELS, SketchesScreen
from tui_lab.app.widgets.comparison import ComparisonTable
from tui_lab.app.widgets.curves import (
    RGB,
    CurvesChart,
    RunColors,
    next_x_axis,
    rgb_style,
    run_label,
)
from tui_lab.core.storage import LoadedSession, load_sessions
from tui_lab.errors import BadInput
from tui_lab.schema import Session
from tui_lab.settings import SESSIONS_DIR


def load_all(paths: list[Path]) -> tuple[list[LoadedSession], list[str]]:
    """Every session under the paths; a broken file, even one named directly, is a warning."""
    loaded, warnings = [], []
    for path in paths:
        try:
            found, skipped = load_sessions([path])
        except BadInput as error:
            found, skipped = [], [f"skipped {error.describe()}"]
        loaded += found
        warnings += skipped
    return loaded, warnings


def latest_sweep(loaded: list[LoadedSession]) -> list[LoadedSession]:
    """The runs of the newest preset: what a user who just ran a sweep wants to see first."""
    if not loaded:
        return []
    newest = max(loaded, key=lambda item: item.session.created).session.config.preset_name
    return [item for item in loaded if item.session.config.preset_name == newest]


class CompareScreen(Screen):
    """Session picker on the left; loss and accuracy charts and the sortable table on the right."""

    CSS_PATH = "compare.tcss"
    HORIZONTAL_BREAKPOINTS: ClassVar = [(0, "-narrow"), (140, "-wide")]  # wide: charts side by side
    BINDINGS: ClassVar = [
        Binding("x", "cycle_x_axis", "X-axis", tooltip="epochs → samples seen → seconds"),
        Binding("w", "toggle_raw", "Raw loss", tooltip="show or hide the unsmoothed loss"),
        Binding(
            "e",
            "toggle_seeds",
            "Seeds",
            tooltip="seeds of one configuration: their mean and min–max band, or every seed",
            show=False,  # the charts' title names the key when there are seeds to switch
        ),
        Binding("o", "open_folder", "Open", tooltip="type a folder of sessions to add"),
        Binding(
            "m", "app.toggle_maximize", "Zoom", tooltip="focused chart or table fills the screen"
        ),
        Binding(
            "k",
            "sketches",
            "Sketches",
            tooltip="the ticked runs' paths side by side; i then draws the line between two",
        ),
        Binding(
            "g",
            "analysis",
            "Analysis",
            tooltip="steps to target and the wall-time optimum against batch size, ticked runs",
        ),
        Binding("a", "toggle_all", "Select all/none", show=False),
        Binding("r", "reload", "Reload session files", show=False),
        Binding("p", "toggle_picker", "Show/hide the session picker", show=False),
    ]

    def __init__(
        self, paths: list[Path] | None = None, select_all: bool | None = None, **screen_kwargs
    ) -> None:
        """``select_all``: tick every run found (default: when paths are given, as from
        ``bslab compare --tui PATH...``); otherwise only the newest sweep's runs."""
        super().__init__(**screen_kwargs)
        self.paths = [Path(p) for p in paths or []] or [SESSIONS_DIR]
        self.select_all = bool(paths) if select_all is None else select_all
        self.sessions: dict[str, LoadedSession] = {}  # by path, in the picker's order
        self.warned: set[str] = set()  # each broken file is reported once, not on every reload
        self.run_colors = RunColors()

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-body"):
            with Vertical(id="picker"):
                yield Input(placeholder="folder to open, then enter", id="folder")
                yield SelectionList[str](id="session-list")
            with Container(id="charts"):
                yield CurvesChart("loss", self.run_colors, id="loss-chart")
                yield CurvesChart("accuracy", self.run_colors, id="accuracy-chart")
        yield ComparisonTable(id="comparison")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#picker").border_title = "sessions (space selects)"
        self.query_one("#comparison").border_title = "comparison (s sorts the cursor column)"
        loaded = self.load(self.paths)
        chosen = loaded if self.select_all else latest_sweep(loaded)
        self.picker.focus()
        for item in chosen:
            self.picker.select(str(item.path))
        if not loaded:
            where = ", ".join(map(str, self.paths))
            self.notify(f"No sessions in {where}: run a sweep, or press o to open a folder.")

    @property
    def picker(self) -> SelectionList[str]:
        return self.query_one("#session-list", SelectionList)

    @property
    def selected_sessions(self) -> list[Session]:
        """The ticked runs, in the picker's order (which fixes their colours)."""
        return [item.session for item in self.selected_items]

    @property
    def selected_items(self) -> list[LoadedSession]:
        chosen = set(self.picker.selected)
        return [item for key, item in self.sessions.items() if key in chosen]

    def load(self, paths: list[Path]) -> list[LoadedSession]:
        """Add the sessions under ``paths`` to the picker; broken files become one notification."""
        loaded, warnings = load_all(paths)
        for item in loaded:
            key = str(item.path)
            if key not in self.sessions:
                self.picker.add_option(Selection(self._prompt(item, None), key))
            self.sessions[key] = item
        if self.picker.highlighted is None and self.picker.option_count:
            self.picker.highlighted = 0  # so that space works at once
        warnings = [w for w in warnings if w not in self.warned]
        self.warned.update(warnings)
        if warnings:
            shown = "\n".join(warnings[:5]) + ("\n…" if len(warnings) > 5 else "")
            self.notify(shown, title=f"{len(warnings)} file(s) skipped", severity="warning")
        return loaded

    @staticmethod
    def _prompt(item: LoadedSession, color: RGB | None) -> Text:
        """``━ preset: sgd b=32``, the swatch in the run's chart colour: the charts' legend."""
        session = item.session
        swatch = ("━ ", rgb_style(color)) if color else "  "
        return Text.assemble(swatch, (f"{session.config.preset_name}: ", "dim"), run_label(session))

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        self.show_selected()

    def show_selected(self) -> None:
        sessions = self.selected_sessions
        chosen = set(self.picker.selected)
        for index, (key, item) in enumerate(self.sessions.items()):
            color = self.run_colors(item.session) if key in chosen else None
            self.picker.replace_option_prompt_at_index(index, self._prompt(item, color))
        for chart in self.query(CurvesChart):
            chart.update_sessions(sessions)
        self.query_one(ComparisonTable).show_sessions(sessions)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        folder = Path(event.value.strip()).expanduser()
        if not folder.is_dir():
            self.notify(f"{folder}: not a folder", severity="error")
            return
        if folder not in self.paths:
            self.paths.append(folder)
        found = self.load([folder])
        event.input.value = ""
        self.notify(f"{len(found)} session(s) in {folder}: select them with space.")
        self.picker.focus()

    def action_cycle_x_axis(self) -> None:
        for chart in self.query(CurvesChart):
            chart.x_axis = next_x_axis(chart.x_axis)

    def action_toggle_raw(self) -> None:
        chart = self.query_one("#loss-chart", CurvesChart)
        chart.show_raw = not chart.show_raw

    def action_toggle_seeds(self) -> None:
        for chart in self.query(CurvesChart):
            chart.by_group = not chart.by_group

    def action_toggle_all(self) -> None:
        if len(self.picker.selected) == self.picker.option_count:
            self.picker.deselect_all()
        else:
            self.picker.select_all()

    def action_open_folder(self) -> None:
        self.query_one("#picker").display = True
        self.query_one("#folder", Input).focus()

    def on_screen_resume(self) -> None:
        if self.sessions:  # back from training: pick up the runs written meanwhile
            self.action_reload()

    def action_reload(self) -> None:
        """Read every open folder again: runs still training elsewhere have new epochs."""
        self.load(self.paths)
        self.show_selected()

    def action_sketches(self) -> None:
        """Open the ticked runs' trajectory sketches; runs without one are named and left out."""
        chosen = self.selected_items
        if len(chosen) < 2:
            self.notify("Tick two to four runs (space), then press k.", severity="warning")
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
        if len(drawable) > MAX_PANELS:
            self.notify(f"Showing the first {MAX_PANELS} of {len(drawable)} runs.")
        self.app.push_screen(SketchesScreen(drawable[:MAX_PANELS]))

    def action_analysis(self) -> None:
        """Open the scaling analysis of the ticked runs (grouped by all but the batch size)."""
        sessions = self.selected_sessions
        if not sessions:
            self.notify("Tick the runs of a sweep (space, or a for all), then press g.")
            return
        self.app.push_screen(AnalysisScreen(sessions))

    def action_toggle_picker(self) -> None:
        picker = self.query_one("#picker")
        picker.display = not picker.display
