"""One row per run of the sweep: its status (diverged and out-of-memory stand out) and numbers:
the learning rate it really used (after the lr-scaling rule) and, once ended, its peak memory."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from tui_lab.app.live_sweep import RunState
from tui_lab.app.widgets.curves import RunColors, rgb_style
from tui_lab.report.comparison import format_bytes
from tui_lab.report.vocabulary import STATUS_STYLES

# (title, width): fixed, as cells change while training and auto widths would not follow.
# They add up (with a cell's padding of 1 each side) to fit 80 columns.
COLUMNS = (
    ("run", 15),
    ("lr", 7),
    ("status", 13),
    ("epoch", 7),
    ("val acc", 7),
    ("samples/s", 9),
    ("peak mem", 8),
)


class RunTable(DataTable):
    """Rebuilt from the run states on each (throttled) refresh: a sweep has only a few runs."""

    DEFAULT_CSS = """
    RunTable { height: auto; max-height: 9; }
    """

    def __init__(self, run_colors: RunColors, **widget_kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **widget_kwargs)
        self.run_colors = run_colors

    def on_mount(self) -> None:
        for title, width in COLUMNS:
            self.add_column(title, width=width)

    def show(self, runs: list[RunState]) -> None:
        rows = [self._row(run) for run in runs]
        if self.row_count != len(rows):
            self.clear()
            for index, row in enumerate(rows):
                self.add_row(*row, key=str(index))
            return
        for index, row in enumerate(rows):
            for column, value in enumerate(row):
                if self.get_cell_at((index, column)) != value:
                    self.update_cell_at((index, column), value)

    def _row(self, run: RunState) -> tuple[object, ...]:
        color = rgb_style(self.run_colors(run.session)) if run.session else ""
        label = Text.assemble(("━ " if run.session else "  ", color), run.config.label())
        status = Text(run.status.replace("_", " "), style=STATUS_STYLES.get(run.status, ""))
        memory = run.peak_memory
        return (
            label,
            f"{run.config.lr:.3g}",
            status,
            f"{run.epoch}/{run.config.epochs}" if run.epoch else "",
            f"{run.accuracy:.1%}" if run.accuracy is not None else "",
            f"{run.samples_per_second:,.0f}" if run.samples_per_second else "",
            Text(format_bytes(memory.peak_bytes), justify="right") if memory else "",
        )
