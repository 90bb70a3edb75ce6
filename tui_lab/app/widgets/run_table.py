"""One row per run of the sweep, in the run's colour (the charts' legend): its status (diverged,
out of memory and "did not learn" stand out), progress, speed (the latest, then the whole run's;
~ when timed on a busy machine), the learning rate it really used (after the lr-scaling rule)
and, once ended, its peak memory. Columns that do not fit the width are left out whole."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from tui_lab.app.live_sweep import RunState
from tui_lab.app.widgets.columns import columns_that_fit
from tui_lab.app.widgets.curves import RunColors, rgb_style
from tui_lab.report.comparison import CONTENDED_MARK, contended, format_bytes, status_key
from tui_lab.report.vocabulary import STATUS_STYLES, status_word
from tui_lab.schema.common import lr_text

# What matters first: a narrow terminal drops the last columns whole (columns_that_fit). The
# widths fit the widest value a cell can take while training, so a growing number never clips.
COLUMNS = ("run", "status", "epoch", "val acc", "samples/s", "lr", "peak mem")
MEMORY_SUFFIX = {"process_peak_rss": " rss"}  # on the cpu: the process's peak RSS, not the run's


def column_widths(runs: list[RunState]) -> list[int]:
    """Each column's width for these runs: their labels and lrs whole, an epoch's "12/12",
    "100.0%", a GPU's "1,234,567~" samples/s, "1.14G rss"."""
    epochs = max((run.config.epochs for run in runs), default=1)
    return [
        max((2 + len(run.config.label()) for run in runs), default=3),
        max(len(status_word(status)) for status in STATUS_STYLES),
        max(5, 2 * len(str(epochs)) + 1),
        7,
        10,
        max((len(lr_text(run.config.lr)) for run in runs), default=2),
        9,
    ]


class RunTable(DataTable):
    """Rebuilt from the run states on each (throttled) refresh: a sweep has only a few runs."""

    DEFAULT_CSS = """
    RunTable { height: auto; max-height: 13; }
    """

    def __init__(self, run_colors: RunColors, **widget_kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **widget_kwargs)
        self.run_colors = run_colors
        self.runs: list[RunState] = []
        self.widths: list[int] = []
        self.hidden: list[str] = []  # the columns the width has no room for, lowest priority last

    def on_resize(self) -> None:
        self.show(self.runs, rebuild=True)  # the columns that fit follow the width

    def show(self, runs: list[RunState], rebuild: bool = False) -> None:
        self.runs = runs
        rows = [self._row(run) for run in runs]
        widths = column_widths(runs)
        if rebuild or self.row_count != len(rows) or widths != self.widths:
            self._rebuild(rows, widths)
        else:
            shown = len(self.columns)
            for index, row in enumerate(rows):
                for column, value in enumerate(row[:shown]):
                    if self.get_cell_at((index, column)) != value:
                        self.update_cell_at((index, column), value)
        self._follow_running()

    def _follow_running(self) -> None:
        """Keep the first run still training in view (the one the progress line shows) until the
        user takes the table: in a sweep of 100+ runs it is otherwise far below the rows seen."""
        running = next((i for i, run in enumerate(self.runs) if run.status == "running"), None)
        if running is None or self.has_focus:
            return
        rows_seen = max(1, self.size.height - self.header_height)
        if not self.scroll_y <= running < self.scroll_y + rows_seen:
            self.scroll_to(y=running, animate=False, immediate=True)

    def _rebuild(self, rows: list[tuple[object, ...]], widths: list[int]) -> None:
        self.widths = widths
        shown = columns_that_fit(widths, self.size.width, self.cell_padding, keep=1)
        cursor = self.cursor_coordinate
        self.clear(columns=True)
        for title, width in zip(COLUMNS[:shown], widths, strict=False):
            self.add_column(title, width=width, key=title)
        self.hidden = list(COLUMNS[shown:])
        for index, row in enumerate(rows):
            self.add_row(*row[:shown], key=str(index))
        if self.row_count:
            self.cursor_coordinate = cursor

    def _row(self, run: RunState) -> tuple[object, ...]:
        session = run.session
        color = rgb_style(self.run_colors(session)) if session else ""
        label = Text.assemble(("━ " if session else "  ", color), run.config.label())
        status = status_key(session) if session and run.status == session.status else run.status
        status_cell = Text(status_word(status), style=STATUS_STYLES.get(status, ""))
        rate = run.mean_samples_per_second or run.samples_per_second
        speed = f"{rate:,.0f}" if rate else ""
        if speed and session is not None and contended(session):
            speed += CONTENDED_MARK
        memory = run.peak_memory
        return (
            label,
            status_cell,
            f"{run.epoch}/{run.config.epochs}" if run.epoch else "",
            f"{run.accuracy:.1%}" if run.accuracy is not None else "",
            Text(speed, justify="right"),
            lr_text(run.config.lr),
            Text(format_bytes(memory.peak_bytes) + MEMORY_SUFFIX.get(memory.source, ""))
            if memory
            else "",
        )
