"""The batch-size experiment's table as a DataTable, sortable by any column (click or key)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from tui_lab.app.widgets.curves import RunColors, rgb_style
from tui_lab.report.comparison import (
    CONTENDED_MARK,
    ComparisonRow,
    best_rows,
    comparison_rows,
    contended,
    status_key,
)
from tui_lab.report.vocabulary import COLUMN_LABELS as LABEL
from tui_lab.report.vocabulary import NOT_REACHED, status_word
from tui_lab.schema import OPTIMIZER_NAMES, Session

SortValue = float | str | tuple | None
SCROLLBAR = 2  # columns kept free for the vertical scrollbar


@dataclass(frozen=True)
class Column:
    label: str
    justify: Literal["left", "right"]
    cell: Callable[[ComparisonRow], str]
    sort_value: Callable[[ComparisonRow], SortValue]


def _fmt(value: float | None, spec: str, missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def _config(row: ComparisonRow):
    return row.session.config


def _contended_mark(row: ComparisonRow) -> str:
    return CONTENDED_MARK if contended(row.session) else ""


# fmt: off
# What matters first, so that 80 columns show the outcome (status, accuracy, time to target)
# and only lr and data/model need a sideways scroll; batch and optimizer stay put.
COLUMNS: tuple[Column, ...] = (
    Column(LABEL["batch"], "left", lambda r: r.batch_label,
           lambda r: (_config(r).batch_size_requested == "full", _config(r).batch_size,
                      OPTIMIZER_NAMES.index(_config(r).optimizer.name))),
    Column(LABEL["optimizer"], "left", lambda r: _config(r).optimizer.name,
           lambda r: (OPTIMIZER_NAMES.index(_config(r).optimizer.name), _config(r).batch_size)),
    Column(LABEL["status"], "left", lambda r: status_word(status_key(r.session)),
           lambda r: status_key(r.session)),
    Column(LABEL["final_accuracy"], "right", lambda r: _fmt(r.final_accuracy, ".1%"),
           lambda r: r.final_accuracy),
    Column(LABEL["best_accuracy"], "right", lambda r: _fmt(r.best_accuracy, ".1%"),
           lambda r: r.best_accuracy),
    Column(LABEL["seconds_to_target"], "right",
           lambda r: _fmt(r.seconds_to_target, ".1f", NOT_REACHED),
           lambda r: r.seconds_to_target),
    Column(LABEL["epochs_to_target"], "right", lambda r: _fmt(r.epochs_to_target, "d", NOT_REACHED),
           lambda r: r.epochs_to_target),
    Column(LABEL["seconds_per_epoch"], "right",
           lambda r: _fmt(r.seconds_per_epoch, ".2f") + _contended_mark(r),
           lambda r: r.seconds_per_epoch),
    Column(LABEL["relative_time"], "right", lambda r: _fmt(r.relative_time, ".2f"),
           lambda r: r.relative_time),
    Column(LABEL["lr"], "right", lambda r: f"{_config(r).lr:.3g}", lambda r: _config(r).lr),
    Column(LABEL["data_model"], "left", lambda r: f"{_config(r).dataset}/{_config(r).model}",
           lambda r: (str(_config(r).dataset), str(_config(r).model))),
)
# fmt: on
# column → index in best_rows(): fastest, most accurate
STARRED = {LABEL["seconds_to_target"]: 0, LABEL["final_accuracy"]: 1}


def sorted_rows(rows: Sequence[ComparisonRow], column: Column, descending: bool) -> list:
    """Rows ordered by one column; runs without a value (not reached, no epochs) always last."""
    present = [r for r in rows if column.sort_value(r) is not None]
    missing = [r for r in rows if column.sort_value(r) is None]
    return sorted(present, key=column.sort_value, reverse=descending) + missing


class ComparisonTable(DataTable):
    """One row per run; ★ marks the run fastest to the target and the most accurate one."""

    BINDINGS: ClassVar = [
        Binding("s", "sort_by_cursor", "Sort column"),
    ]

    def __init__(self, run_colors: RunColors | None = None, **widget_kwargs) -> None:
        super().__init__(cursor_type="cell", zebra_stripes=True, **widget_kwargs)
        self.fixed_columns = 2  # batch and optimizer stay visible while scrolling sideways
        self.run_colors = run_colors or RunColors()
        self._rows: list[ComparisonRow] = []
        self.sort_index = 0
        self.descending = False
        self.hidden: list[str] = []  # columns that do not fit the width, lowest priority last

    def on_mount(self) -> None:
        self._rebuild()

    def show_sessions(self, sessions: Sequence[Session]) -> None:
        self._rows = comparison_rows(list(sessions))
        self._rebuild()

    def sort_by(self, index: int, descending: bool | None = None) -> None:
        """Sort by column ``index``; picking the current column again flips the order."""
        if descending is None:
            descending = not self.descending if index == self.sort_index else False
        self.sort_index, self.descending = index, descending
        self._rebuild()

    def action_sort_by_cursor(self) -> None:
        self.sort_by(self.cursor_column)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(event.column_index)

    @property
    def row_sessions(self) -> list[Session]:
        """The runs in the order shown."""
        return [row.session for row in self._displayed()]

    def _displayed(self) -> list[ComparisonRow]:
        return sorted_rows(self._rows, COLUMNS[self.sort_index], self.descending)

    def on_resize(self) -> None:
        self._rebuild()  # the columns that fit follow the width

    def _rebuild(self) -> None:
        """Refill the table; widths are measured here because DataTable's auto widths can leave
        rows drawn before a wider cell arrived truncated. Columns are kept in order of priority
        while they fit the width: the last ones are dropped whole, never clipped."""
        cursor = self.cursor_coordinate
        starred = best_rows(self._rows)
        cells = [[self._cell(r, column, starred) for column in COLUMNS] for r in self._displayed()]
        self.clear(columns=True)
        room = self.size.width - SCROLLBAR if self.size.width else None
        used, self.hidden = 0, []
        for index, column in enumerate(COLUMNS):
            arrow = (" ▼" if self.descending else " ▲") if index == self.sort_index else ""
            label = Text(column.label + arrow, justify=column.justify)
            width = max([label.cell_len, *(row[index].cell_len for row in cells)])
            used += width + 2 * self.cell_padding
            if room is not None and used > room and index >= self.fixed_columns:
                self.hidden.append(column.label)
                continue
            self.add_column(label, width=width, key=column.label)
        hidden = f" · hidden: {', '.join(self.hidden)}" if self.hidden else ""
        self.border_title = f"s sorts · ×time 1.00 = fastest · F1: columns{hidden}"
        shown = len(COLUMNS) - len(self.hidden)
        self.add_rows([row[:shown] for row in cells])
        if self.row_count:
            self.cursor_coordinate = cursor

    def _cell(self, row: ComparisonRow, column: Column, starred: tuple) -> Text:
        """A cell; the batch carries the run's colour, so the table is the charts' legend."""
        text = column.cell(row)
        if column.label in STARRED and starred[STARRED[column.label]] is row:
            text += " ★"
        if column.label == "batch":
            swatch = rgb_style(self.run_colors(row.session))
            return Text.assemble(("━ ", swatch), text)
        bad = column.label == "status" and status_key(row.session) not in ("completed", "running")
        return Text(text, justify=column.justify, style="bold red" if bad else "")
