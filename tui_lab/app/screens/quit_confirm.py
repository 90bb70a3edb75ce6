"""Asked before quitting while a sweep runs: quitting saves the current run as interrupted."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class QuitConfirm(ModalScreen[bool]):
    """Dismisses with True to quit; y/n/escape work as well as the buttons."""

    DEFAULT_CSS = """
    QuitConfirm { align: center middle; }
    QuitConfirm > Vertical {
        width: 60; max-width: 100%; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    QuitConfirm Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    QuitConfirm Button { margin-left: 2; }
    """
    BINDINGS: ClassVar = [
        Binding("y", "answer(True)", "Quit"),
        Binding("n,escape", "answer(False)", "Keep training"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                "[b]A sweep is training.[/b]\n\nQuit anyway? The current run is saved as "
                "[b]interrupted[/b]; the runs not started yet are skipped."
            )
            with Horizontal():
                yield Button("Keep training (n)", id="keep")
                yield Button("Quit (y)", variant="warning", id="quit")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "quit")

    def action_answer(self, quit_app: bool) -> None:
        self.dismiss(quit_app)
