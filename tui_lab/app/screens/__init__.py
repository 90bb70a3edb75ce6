"""The app's screens: Setup, Train and Compare, plus the dialogs they open."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def screen_css(name: str) -> str:
    """A screen's stylesheet, for its ``CSS`` (not ``CSS_PATH``): Textual scopes a screen's
    ``CSS`` to that screen, but loads ``CSS_PATH`` files app-wide, where an ``#charts`` rule
    written for Compare would also lay out Train's charts."""
    return (HERE / name).read_text(encoding="utf-8")
