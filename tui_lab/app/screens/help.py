"""A short help: the keys of the screen it opens over, and the ideas the lab lets you see."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from tui_lab.app.screens import screen_css
from tui_lab.report.vocabulary import COLUMN_NOTES

EVERYWHERE = [
    ("tab / shift+tab", "move between panes"),
    ("ctrl+p", "command palette: every action, searchable"),
    ("space / enter", "tick a run in a list / confirm an input"),
    ("escape", "close this help"),
]

IDEAS = [
    "Full batch gives the truest descent direction; Rprop (each weight steps by the sign of "
    "its gradient, with its own step size) works well there.",
    "With mini-batches Rprop breaks: signs from different batches cancel instead of averaging. "
    "RMSProp is the compromise.",
    "Online learning (batch 1) follows each sample's gradient and zig-zags: see it in the "
    "paraboloid lab, a linear neuron's bowl-shaped error surface.",
    "A larger batch uses the hardware better and takes fewer, less noisy steps per epoch, but "
    "needs more epochs for the same accuracy; past a critical size (the gradient noise scale) "
    "the direction stops improving.",
    "So one batch size is best in wall time and one, maybe another, in final accuracy: compare "
    "s→t (seconds to the target) and final in the Compare table.",
    "Along the line between a small-batch and a large-batch solution, the loss rises faster "
    "around a sharp minimum than around a flat one (Compare: k sketches, then i).",
    "Compare runs over epochs, samples seen or seconds, never steps: a step is a different "
    "amount of data at each batch size.",
]


def screen_keys(screen: Screen) -> list[tuple[str, str]]:
    """Keys active on ``screen``: all of its own and the app's, and the shown ones of the
    focused widget (hidden ones there are arrows and the like, which need no help)."""
    rows: dict[str, tuple[str, str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        own = isinstance(active.node, (Screen, App))
        if binding.description and not binding.system and (own or binding.show):
            key = screen.app.get_key_display(binding)
            does = binding.description + (f": {binding.tooltip}" if binding.tooltip else "")
            rows.setdefault(binding.description, (key, does))
    return list(rows.values())


def keys_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    table.box, table.show_header = None, False
    table.add_column("key", style="bold", no_wrap=True, min_width=12)
    table.add_column("does", ratio=1)
    for key, does in rows:
        table.add_row(key, does)
    return table


def ideas_text() -> Text:
    text = Text("The ideas\n", style="bold")
    for idea in IDEAS:
        text.append(f"• {idea}\n")
    text.append("Read more: Shallue 2018, McCandlish 2018, Goyal 2017, Keskar 2017.", "italic")
    return text


class HelpScreen(ModalScreen[None]):
    """Keys first (what a user looks for), then the batch-size ideas in a few lines."""

    CSS = screen_css("help.tcss")
    BINDINGS: ClassVar = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close help"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog") as dialog:
            dialog.border_title = "bslab help"
            dialog.border_subtitle = "↑↓ scroll · esc close"
            yield Static(id="help-keys")
            yield Static(keys_table("Everywhere", EVERYWHERE))
            yield Static(keys_table("Table columns", list(COLUMN_NOTES.items())))
            yield Static(ideas_text())

    def on_mount(self) -> None:
        stack = self.app.screen_stack
        index = stack.index(self) if self in stack else 0
        if index:
            keys = keys_table("On this screen", screen_keys(stack[index - 1]))
            self.query_one("#help-keys", Static).update(keys)
        self.query_one("#help-dialog").focus()
