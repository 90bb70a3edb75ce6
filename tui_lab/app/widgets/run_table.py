"""One row per run of the sweep, in the run's colour (the charts' legend): its status (diverged,
out of memory and "did not learn" stand out), progress, speed (~ when timed on a busy machine),
the learning rate it really used (after the lr-scaling rule) and, once ended, its peak memory."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from tui_lab.app.live_sweep import RunState
from tui_lab.app.widgets.curves import RunColors, rgb_style
from tui_lab.report.comparison import CONTENDED_MARK, contended, format_bytes, status_key
from tui_lab.report.vocabulary import STATUS_STYLES, status_word

# (title, width): fixed, as cells change while training and auto widths would not follow.
# What matters first; with a cell's padding of 1 each side they fit 80 columns.
COLUMNS = (
    ("run", 14),  # "━ sgd b=64 s=0": a seed's label whole
    ("status", 13),
    ("epoch", 7),
    ("val acc", 7),
    ("samples/s", 9),
    ("lr", 6),
    ("peak mem", 9),
)
MEMORY_SUFFIX = {"process_peak_rss": " rss"}  # on the cpu: the process's peak RSS, not the run's


class RunTable(DataTable):
    """Rebuilt from the run states on each (throttled) refresh: a sweep has only a few runs."""

    DEFAULT_CSS = """
    RunTable { height: auto; max-height: 13; }
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
        session = run.session
        color = rgb_style(self.run_colors(session)) if session else ""
        label = Text.assemble(("━ " if session else "  ", color), run.config.label())
        status = status_key(session) if session and run.status == session.status else run.status
        status_cell = Text(status_word(status), style=STATUS_STYLES.get(status, ""))
        speed = f"{run.samples_per_second:,.0f}" if run.samples_per_second else ""
        if speed and session is not None and contended(session):
            speed += CONTENDED_MARK
        memory = run.peak_memory
        return (
            label,
            status_cell,
            f"{run.epoch}/{run.config.epochs}" if run.epoch else "",
            f"{run.accuracy:.1%}" if run.accuracy is not None else "",
            Text(speed, justify="right"),
            f"{run.config.lr:.3g}",
            Text(format_bytes(memory.peak_bytes) + MEMORY_SUFFIX.get(memory.source, ""))
            if memory
            else "",
        )
