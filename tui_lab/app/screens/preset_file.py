"""Asks for a preset file to load or a path to save to: a path field plus the presets found."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList

PRESET_FOLDERS = (Path("presets"), Path("."))


def found_presets() -> list[Path]:
    """JSON files in ./presets and the current folder: where presets usually are."""
    found: list[Path] = []
    for folder in PRESET_FOLDERS:
        if folder.is_dir():
            found += sorted(p for p in folder.glob("*.json") if p not in found)
    return found


class PresetFileDialog(ModalScreen[Path | None]):
    """Dismisses with the chosen path, or None on escape. ↓ moves from the field to the list."""

    DEFAULT_CSS = """
    PresetFileDialog { align: center middle; }
    PresetFileDialog > Vertical {
        width: 70; max-width: 100%; height: auto; max-height: 90%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    PresetFileDialog OptionList { height: auto; max-height: 12; margin-top: 1; }
    PresetFileDialog .hint { color: $text-muted; }
    """
    BINDINGS: ClassVar = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, initial: Path | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.initial = initial
        self.choices = found_presets()

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Input(
                str(self.initial or ""), placeholder="path/to/preset.json", id="preset-path"
            )
            yield Label("enter: confirm · ↓: pick a preset below · escape: cancel", classes="hint")
            if self.choices:
                yield OptionList(*map(str, self.choices), id="preset-choices")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(Path(event.value.strip()).expanduser())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[event.option_index])

    def key_down(self) -> None:
        if self.focused is self.query_one("#preset-path") and self.choices:
            self.query_one("#preset-choices").focus()
