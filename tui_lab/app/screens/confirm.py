"""Asked before anything that ends training early: quitting, cancelling the sweep, skipping a
run. Each saves the run in progress as interrupted, so each asks first, the same way."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class Confirm(ModalScreen[bool]):
    """Dismisses with True to go ahead; y/n/escape work as well as the buttons. The safe answer
    has the focus, so an enter pressed by habit keeps training."""

    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical {
        width: 60; max-width: 100%; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    Confirm Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    Confirm Button { margin-left: 2; }
    """
    BINDINGS: ClassVar = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No, keep training"),
    ]

    def __init__(self, question: str, yes: str) -> None:
        """``question``: what happens if the user says yes (markup); ``yes``: its button."""
        super().__init__()
        self.question, self.yes = question, yes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question)
            with Horizontal():
                yield Button("Keep training (n)", id="keep")
                yield Button(f"{self.yes} (y)", variant="warning", id="yes")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


QUIT = (
    "[b]A sweep is training.[/b]\n\nQuit anyway? The current run is saved as "
    "[b]interrupted[/b]; the runs not started yet are skipped.",
    "Quit",
)
CANCEL = (
    "[b]Cancel the sweep?[/b]\n\nThe current run is saved as [b]interrupted[/b]; the runs not "
    "started yet are skipped.",
    "Cancel sweep",
)
SKIP = (
    "[b]Skip this run?[/b]\n\nIt is saved as [b]interrupted[/b] and the sweep goes on with the "
    "next run.",
    "Skip run",
)
