"""The batch-size experiment's table as a DataTable, sortable by any column (click or key)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from tui_lab.analysis.seeds import SeedGroup, group_key, seed_groups
from tui_lab.app.widgets.columns import columns_that_fit
from tui_lab.app.widgets.curves import RunColors, rgb_style
from tui_lab.report.comparison import (
    CONTENDED_MARK,
    ComparisonRow,
    best_rows,
    comparison_rows,
    contended,
    field_text,
    status_key,
)
from tui_lab.report.seeds import SEED_COLUMNS, SEED_SORT_KEYS, best_groups, seeds_cells
from tui_lab.report.vocabulary import COLUMN_LABELS as LABEL
from tui_lab.report.vocabulary import status_word
from tui_lab.schema import OPTIMIZER_NAMES, Session

SortValue = float | str | tuple | None


@dataclass(frozen=True)
class Column:
    label: str
    justify: Literal["left", "right"]
    cell: Callable[[ComparisonRow], str]
    sort_value: Callable[[ComparisonRow], SortValue]


def _config(row: ComparisonRow):
    return row.session.config


def _contended_mark(row: ComparisonRow) -> str:
    return CONTENDED_MARK if contended(row.session) else ""


def _number(name: str) -> Column:
    """A column of one of the row's numbers, written as every table writes it."""
    value = lambda r: getattr(r, name)  # noqa: E731
    return Column(LABEL[name], "right", lambda r: field_text(name, value(r)), value)


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
    _number("final_accuracy"),
    _number("best_accuracy"),
    _number("seconds_to_target"),
    _number("epochs_to_target"),
    Column(LABEL["seconds_per_epoch"], "right",
           lambda r: field_text("seconds_per_epoch", r.seconds_per_epoch) + _contended_mark(r),
           lambda r: r.seconds_per_epoch),
    _number("relative_time"),
    Column(LABEL["lr"], "right", lambda r: field_text("lr", _config(r).lr),
           lambda r: _config(r).lr),
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
        self._groups: list[SeedGroup] = []
        self.grouped = False  # one row per configuration (mean ± sd), as `bslab compare`
        self.expanded: set[str] = set()  # configurations (group keys) shown with their seeds
        self._shown: list[SeedGroup] = []  # the configuration of each row shown

    def on_mount(self) -> None:
        self._rebuild()

    def show_sessions(self, sessions: Sequence[Session]) -> None:
        """One row per run, or, when a configuration has several seeds, one per configuration
        with its statistics over the seeds: the table ``bslab compare`` prints."""
        self._rows = comparison_rows(list(sessions))
        self._groups = seed_groups(sessions)
        self.grouped = any(group.n > 1 for group in self._groups)
        if self.grouped and self.sort_index >= len(SEED_COLUMNS):
            self.sort_index = 0
        self._rebuild()

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        """enter (or a click) on a configuration shows its seeds' rows under it, or hides them."""
        if not self.grouped or event.coordinate.row >= len(self._shown):
            return
        event.stop()
        key = group_key(self._shown[event.coordinate.row].sessions[0])
        self.expanded ^= {key}
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
        """The runs in the order shown (by configuration, seeds together, when grouped)."""
        if self.grouped:
            return [session for group in self._ordered_groups() for session in group.sessions]
        return [row.session for row in self._displayed()]

    def _ordered_groups(self) -> list[SeedGroup]:
        key = SEED_SORT_KEYS[SEED_COLUMNS[self.sort_index]]
        present = [g for g in self._groups if key(g) is not None]
        missing = [g for g in self._groups if key(g) is None]
        return sorted(present, key=key, reverse=self.descending) + missing

    def _grouped_cells(self) -> list[list[Text]]:
        """A row per configuration and, under an expanded one, a row per seed."""
        fastest, accurate = best_groups(self._groups)
        rows, self._shown = [], []
        for group in self._ordered_groups():
            rows.append(self._seed_row(group, seeds_cells(group, fastest, accurate)))
            self._shown.append(group)
            if group_key(group.sessions[0]) in self.expanded and group.n > 1:
                for session in group.sessions:
                    cells = seeds_cells(SeedGroup([session]))
                    cells[:3] = ["", "", f"s={session.config.seed}"]
                    rows.append(self._seed_row(group, cells, seed=True))
                    self._shown.append(group)
        return rows

    def _seed_row(self, group: SeedGroup, cells: list[str], seed: bool = False) -> list[Text]:
        swatch = rgb_style(self.run_colors(group.sessions[0]))
        texts = [
            Text(cell, justify="left" if name == "optim" else "right", style="dim" if seed else "")
            for name, cell in zip(SEED_COLUMNS, cells, strict=True)
        ]
        if not seed:
            texts[0] = Text.assemble(("━ ", swatch), cells[0])
        return texts

    def _displayed(self) -> list[ComparisonRow]:
        return sorted_rows(self._rows, COLUMNS[self.sort_index], self.descending)

    def on_resize(self) -> None:
        self._rebuild()  # the columns that fit follow the width

    def _rebuild(self) -> None:
        """Refill the table; widths are measured here because DataTable's auto widths can leave
        rows drawn before a wider cell arrived truncated. Columns are kept in order of priority
        while they fit the width: the last ones are dropped whole, never clipped."""
        cursor = self.cursor_coordinate
        if self.grouped:
            headers = [(name, "left" if name == "optim" else "right") for name in SEED_COLUMNS]
            cells = self._grouped_cells()
        else:
            starred = best_rows(self._rows)
            headers = [(column.label, column.justify) for column in COLUMNS]
            cells = [[self._cell(r, c, starred) for c in COLUMNS] for r in self._displayed()]
        arrow = " ▼" if self.descending else " ▲"
        labels = [
            Text(name + (arrow if index == self.sort_index else ""), justify=justify)
            for index, (name, justify) in enumerate(headers)
        ]
        widths = [
            max([label.cell_len, *(row[index].cell_len for row in cells)])
            for index, label in enumerate(labels)
        ]
        shown = columns_that_fit(widths, self.size.width, self.cell_padding, self.fixed_columns)
        self.clear(columns=True)
        for (name, _), label, width in zip(headers[:shown], labels, widths, strict=False):
            self.add_column(label, width=width, key=name)
        self.hidden = [name for name, _ in headers[shown:]]
        hidden = f" · hidden: {', '.join(self.hidden)}" if self.hidden else ""
        if self.grouped:
            self.border_title = f"per configuration, mean±sd · enter: its seeds{hidden}"
        else:
            self.border_title = f"s sorts · ×time 1.00 = fastest · F1: columns{hidden}"
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
