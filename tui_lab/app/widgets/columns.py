"""Which columns of a table fit its width: the same rule for every table of the app, so that a
narrow terminal drops the least important columns whole instead of clipping their digits."""

from __future__ import annotations

from collections.abc import Sequence

SCROLLBAR = 2  # columns kept free for a table's vertical scrollbar


def columns_that_fit(widths: Sequence[int], table_width: int, padding: int, keep: int) -> int:
    """How many of ``widths`` (in order of priority, each cell padded on both sides) fit a table
    ``table_width`` wide, its scrollbar's room kept; the first ``keep`` always stay. A table not
    laid out yet (width 0) takes them all."""
    used = 0
    for index, width in enumerate(widths):
        used += width + 2 * padding
        if table_width and used > table_width - SCROLLBAR and index >= keep:
            return index
    return len(widths)
