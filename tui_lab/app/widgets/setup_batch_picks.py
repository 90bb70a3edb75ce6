"""Quick picks for batch sizes: powers of two and "full", toggled with ←/→ and space.

One focusable widget rather than twelve buttons, so Tab moves past it in one press.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from tui_lab.app.preset_form import POWERS_OF_TWO

PICKS: tuple[str, ...] = (*map(str, POWERS_OF_TWO), "full")


class BatchPicks(Widget, can_focus=True):
    """Shows which picks the batch-size field holds; toggling one posts ``Toggled``."""

    DEFAULT_CSS = """
    BatchPicks { height: auto; width: auto; }
    """
    BINDINGS: ClassVar = [
        Binding("left", "move(-1)", "Previous", show=False),
        Binding("right", "move(1)", "Next", show=False),
        Binding("space,enter", "toggle", "Toggle size", show=False),
    ]

    selected: reactive[frozenset[str]] = reactive(frozenset())
    cursor: reactive[int] = reactive(0)

    class Toggled(Message):
        def __init__(self, pick: str) -> None:
            super().__init__()
            self.pick = pick

    def render(self) -> Text:
        text = Text()
        for line in self._lines(self.size.width):
            if text:
                text.append("\n")
            for index, pick, _ in line:
                style = "reverse bold" if pick in self.selected else "dim"
                if self.has_focus and index == self.cursor:  # brackets: seen on any terminal
                    text.append(f"[{pick}]", style=style.replace("dim", "bold") + " underline")
                else:
                    text.append(f" {pick} ", style=style)
        return text

    def _lines(self, width: int) -> list[list[tuple[int, str, int]]]:
        """The picks as (index, pick, x) in lines of at most ``width`` cells: a 40-column field
        shows all twelve on two lines rather than clipping 1024 and full."""
        lines: list[list[tuple[int, str, int]]] = [[]]
        x = 0
        for index, pick in enumerate(PICKS):
            cells = len(pick) + 2
            if x and x + cells > width:
                lines.append([])
                x = 0
            lines[-1].append((index, pick, x))
            x += cells
        return lines

    def get_content_width(self, container, viewport) -> int:  # type: ignore[no-untyped-def]
        return min(container.width, sum(len(pick) + 2 for pick in PICKS))

    def get_content_height(self, container, viewport, width: int) -> int:  # type: ignore[no-untyped-def]
        return len(self._lines(width))

    def action_move(self, step: int) -> None:
        self.cursor = (self.cursor + step) % len(PICKS)

    def action_toggle(self) -> None:
        self.post_message(self.Toggled(PICKS[self.cursor]))

    def on_click(self, event: events.Click) -> None:
        lines = self._lines(self.size.width)
        if not 0 <= event.y < len(lines):
            return
        for index, pick, x in lines[event.y]:
            if x <= event.x < x + len(pick) + 2:
                self.cursor = index
                self.action_toggle()
                return

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()


def toggled(sizes: list[str], pick: str) -> list[str]:
    """The batch-size list with ``pick`` added or removed; numbers ascending, "full" last."""
    values = [s for s in sizes if s != pick] if pick in sizes else [*sizes, pick]
    numbers = sorted({int(s) for s in values if s.isdigit()})
    others = [s for s in values if not s.isdigit() and s != "full"]  # let validation flag them
    return [*map(str, numbers), *others, *(["full"] if "full" in values else [])]
