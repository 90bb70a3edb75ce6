"""One-line text widgets that change several times a second while a sweep trains."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


def set_line(widget: Static, text: str | Content) -> None:
    """Show ``text`` in a Static whose size its CSS fixes (height 1, a set or fractional width).

    Only when the text changed, and without a layout pass: a layout re-renders every widget on
    the screen, charts included, which is most of the UI's CPU while training (and on a 2-core
    machine that time comes out of training).
    """
    if widget.content != text:
        widget.update(text, layout=False)
