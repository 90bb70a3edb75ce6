"""Which columns of a table fit its width: the same rule for every table of the app, so that a
narrow terminal drops the least important columns whole instead of clipping their digits."""

from __future__ import annotations

from collections.abc import Sequence

SCROLLBAR = 2  # columns kept free for a table's vertical scrollbar


def columns_that_fit(widths: Sequence[int], room: int | None, padding: int, keep: int) -> int:
    """How many of ``widths`` (in order of priority, each cell padded on both sides) fit in
    ``room`` cells; the first ``keep`` always stay. ``room`` None (not laid out yet): all."""
    used = 0
    for index, width in enumerate(widths):
        used += width + 2 * padding
        if room is not None and used > room and index >= keep:
            return index
    return len(widths)
