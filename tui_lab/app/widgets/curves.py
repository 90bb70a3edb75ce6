"""Live training curves of many runs overlaid: loss (log scale, smoothed) or validation accuracy.

Drawing happens on the UI thread (textual-plotext rebuilds the whole plot inside ``render()``), so
two limits keep it cheap however fast sessions stream in: redraws are throttled by a timer, and
every series is downsampled to a few hundred points before it reaches plotext.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

import numpy as np
from textual.binding import Binding
from textual.color import Color
from textual.reactive import reactive

from tui_lab.analysis.seeds import SeedGroup, group_key, seed_groups
from tui_lab.app.widgets.framed_plot import FramedPlot
from tui_lab.report.plotting import PALETTE, RGB, linear_ticks, log_ticks, run_color_index
from tui_lab.schema import OPTIMIZER_NAMES, RunConfig, Session
from tui_lab.schema.common import lr_text

Metric = Literal["loss", "accuracy"]
XAxis = Literal["epoch", "samples", "seconds"]

X_AXES: tuple[XAxis, ...] = ("epoch", "samples", "seconds")
X_AXIS_TITLES: dict[XAxis, str] = {
    "epoch": "epochs",
    "samples": "samples seen",
    "seconds": "training seconds",
}
STATUS_MARKS = {"diverged": "diverged", "out_of_memory": "OOM", "failed": "failed"}

MAX_POINTS = 300  # per series: plotext's cost grows with points, the eye gains nothing past this
MAX_CURVES = 24  # runs drawn at once: past this a chart is a tangle and costs seconds to draw
POINT_BUDGET = 2000  # over all series of one chart: a sweep of 12 runs draws in ~40 ms
REDRAW_INTERVAL = 1.0  # seconds: at most one redraw a second (each costs 5-40 ms of UI CPU, and
# on a small machine that time comes out of training: the app open cost 12-20% of headless
# throughput on 2 cores at two redraws a second)
FAINT = 0.4  # how far a raw curve's colour is blended into the background: still seen on it


def next_x_axis(axis: XAxis) -> XAxis:
    """The x-axis after ``axis``, for a key that cycles through the fair axes."""
    return X_AXES[(X_AXES.index(axis) + 1) % len(X_AXES)]


def downsample(xs: Sequence[float], ys: Sequence[float], limit: int) -> tuple[list, list]:
    """Evenly spaced points, first and last kept, so a curve keeps its shape and its endpoint."""
    n = len(xs)
    if n <= limit:
        return list(xs), list(ys)
    picks = [round(i * (n - 1) / (limit - 1)) for i in range(limit)]
    return [xs[i] for i in picks], [ys[i] for i in picks]


def smooth(values: Sequence[float]) -> list[float]:
    """Bias-corrected EMA spanning ~1/20 of the curve: the trend of a noisy loss, no start lag."""
    span = max(1.0, len(values) / 20)
    beta = 1 - 2 / (span + 1)
    average, out = 0.0, []
    for t, value in enumerate(values, 1):
        average = beta * average + (1 - beta) * value
        out.append(average / (1 - beta**t) if beta else value)
    return out


def metric_points(session: Session, metric: Metric, x_axis: XAxis) -> tuple[list, list]:
    """(x, y) of one run: step losses or per-epoch accuracy (%), non-finite values dropped."""
    if metric == "loss":
        c = session.curve
        xs = {"epoch": c.epoch, "samples": c.samples, "seconds": c.seconds}[x_axis]
        ys = c.loss
    else:
        epochs = session.epochs
        xs = {
            "epoch": [e.epoch for e in epochs],
            "samples": [e.samples_seen for e in epochs],
            "seconds": list(accumulate(e.train_seconds for e in epochs)),
        }[x_axis]
        ys = [100 * e.val_accuracy for e in epochs]
    kept = [(x, y) for x, y in zip(xs, ys, strict=False) if math.isfinite(y)]
    return [x for x, _ in kept], [y for _, y in kept]


def run_label(session: Session) -> str:
    mark = STATUS_MARKS.get(session.status)
    return f"{session.config.label()} ({mark})" if mark else session.config.label()


def rgb_style(color: RGB) -> str:
    """A run's colour as a Rich/Textual style, for legends drawn outside the plot."""
    return "rgb({},{},{})".format(*color)


def preferred_color(config: RunConfig) -> int:
    """The palette index a run asks for: from its optimizer and batch size alone."""
    full = config.batch_size_requested == "full"
    optimizer = OPTIMIZER_NAMES.index(config.optimizer.name)
    return run_color_index(optimizer, config.batch_size, full)


class RunColors:
    """A colour per configuration, derived from the run itself (``preferred_color``), so that
    Train, Compare and the sketches agree, and every seed of a configuration (its ``group_key``)
    wears its colour: the mean, the band and each seed's line. Share one between the charts and
    legends of a screen: when two configurations shown together ask for the same colour, the
    later one takes the next free colour."""

    def __init__(self) -> None:
        self._by_group: dict[str, int] = {}

    def __call__(self, session: Session) -> RGB:
        key = group_key(session)
        index = self._by_group.get(key)
        if index is None:
            wanted, taken = preferred_color(session.config), set(self._by_group.values())
            free = [(wanted + k) % len(PALETTE) for k in range(len(PALETTE))]
            index = next((i for i in free if i not in taken), wanted)
            self._by_group[key] = index
        return PALETTE[index]

    def retain(self, sessions: Sequence[Session]) -> None:
        """Forget the configurations no longer shown, so that their colours are free again."""
        shown = {group_key(session) for session in sessions}
        self._by_group = {key: index for key, index in self._by_group.items() if key in shown}


def seed_band(
    curves: Sequence[tuple[Sequence[float], Sequence[float]]], limit: int = MAX_POINTS
) -> tuple[list[float], list[float], list[float], list[float]]:
    """The seeds' curves on one x grid: (x, mean, min, max), each x over the seeds that reach
    it (seeds report at their own moments, and runs stopped early end sooner)."""
    kept = [(np.asarray(xs, float), np.asarray(ys, float)) for xs, ys in curves if len(xs)]
    if not kept:
        return [], [], [], []
    grid = np.unique(np.concatenate([xs for xs, _ in kept]))
    if len(grid) > limit:
        grid = grid[np.round(np.linspace(0, len(grid) - 1, limit)).astype(int)]
    stacked = np.full((len(kept), len(grid)), np.nan)
    for row, (xs, ys) in zip(stacked, kept, strict=True):
        inside = (grid >= xs[0]) & (grid <= xs[-1])
        row[inside] = np.interp(grid[inside], xs, ys)
    covered = ~np.isnan(stacked).all(0)
    stacked, grid = stacked[:, covered], grid[covered]
    return (
        grid.tolist(),
        np.nanmean(stacked, 0).tolist(),
        np.nanmin(stacked, 0).tolist(),
        np.nanmax(stacked, 0).tolist(),
    )


def group_label(group: SeedGroup) -> str:
    """``sgd b=32 mean of 4 seeds``; ``2/4 seeds`` while the others have not saved yet (live),
    or when only some of them are ticked."""
    planned = group.config.group_size
    count = f"{group.n}/{planned}" if group.n < planned else str(group.n)
    return f"{group.config.group_label()} mean of {count} seeds"


def has_seeds(group: SeedGroup) -> bool:
    """Whether a configuration is drawn as a mean and band: it has (or will have) several seeds."""
    return group.n > 1 or group.config.group_size > 1


def toggle_seed_view(charts: Iterable[CurvesChart], sessions: Sequence[Session]) -> bool:
    """The ``e`` key of every screen with curves: seeds as their mean and band, or each seed.
    False, and nothing changed, when no configuration has several seeds (the screen says so)."""
    if not any(has_seeds(group) for group in seed_groups(sessions)):
        return False
    for chart in charts:
        chart.by_group = not chart.by_group
    return True


NO_SEEDS = "e switches seeds' mean and each seed: these runs have one seed each"


def focus_tags(config: RunConfig) -> tuple[str, str, str]:
    """What ``f`` can narrow a chart to: the run's batch size, optimizer and lr."""
    batch = "full" if config.batch_size_requested == "full" else str(config.batch_size)
    return (f"b={batch}", config.optimizer.name, f"lr={lr_text(config.lr)}")


def focus_choices(sessions: Sequence[Session]) -> list[str]:
    """``f`` cycles through these: every batch size, then optimizer, then lr, where the runs
    differ in it (batch sizes in numeric order, as the tables list them)."""
    choices: list[str] = []
    ordered = sorted(sessions, key=lambda s: (s.config.batch_size, s.config.lr))
    for dimension in range(3):
        values = list(dict.fromkeys(focus_tags(s.config)[dimension] for s in ordered))
        if len(values) > 1:
            choices += values
    return choices


def next_focus(current: str, sessions: Sequence[Session]) -> str:
    """The focus after ``current`` ('' is every run), back to every run after the last."""
    cycle = ["", *focus_choices(sessions)]
    return cycle[(cycle.index(current) + 1) % len(cycle)] if current in cycle else ""


# Train and Compare both narrow their charts with f.
FOCUS_BINDING = Binding(
    "f",
    "cycle_focus",
    "Focus",
    tooltip="charts: only one batch size, optimizer or lr at a time, then every run",
    show=False,  # F1 and the palette list it; a crowded chart's legend names it
)


def cycle_focus(charts: Iterable[CurvesChart], sessions: Sequence[Session]) -> str | None:
    """The ``f`` key of every screen with curves: narrow the charts to the next batch size,
    optimizer or lr, or back to every run. What the charts show now, for a notice; None (and
    nothing changed) when the runs do not differ in any of the three."""
    if not focus_choices(sessions):
        return None
    charts = list(charts)
    focus = next_focus(charts[0].only if charts else "", sessions)
    for chart in charts:
        chart.only = focus
    return f"charts: only {focus} (f: next)" if focus else "charts: every run"


NO_FOCUS = "f narrows the charts to one batch size, optimizer or lr: these runs share them"


def toggle_raw(chart: CurvesChart) -> str:
    """The ``w`` key of every screen with a loss chart: the unsmoothed loss drawn faint under
    each line, or not. What it did, for a notice: the picture alone does not show it where the
    two coincide (a run's first points) or the loss chart is swapped out."""
    chart.show_raw = not chart.show_raw
    if chart.show_raw:
        return "w: the raw (unsmoothed) loss is drawn faint under each loss line"
    return "w: the loss chart shows the smoothed loss only"


def drawn_groups(groups: Sequence[SeedGroup], by_group: bool) -> list[SeedGroup]:
    """The configurations a chart draws: at most MAX_CURVES lines, the running ones always
    among them (a sweep of 100+ runs is otherwise drawn without the one in progress), then the
    others in order."""
    running = [g for g in groups if any(s.status == "running" for s in g.sessions)]
    chosen, lines = [], 0
    for group in [*running, *(g for g in groups if g not in running)]:
        count = 1 if by_group and has_seeds(group) else group.n
        if lines + count > MAX_CURVES and chosen:
            continue
        chosen.append(group)
        lines += count
    order = {id(g): i for i, g in enumerate(groups)}
    return sorted(chosen, key=lambda g: order[id(g)])


@dataclass(frozen=True)
class Series:
    """One line as drawn: ``label`` is None for the faint raw loss, which has no legend entry."""

    label: str | None
    x: list[float]
    y: list[float]
    color: RGB
    faint: bool = False


class CurvesChart(FramedPlot):
    """Every run's loss (log10, EMA-smoothed over the faint raw curve) or accuracy, overlaid.

    The legend lives in the border subtitle so that it never hides a curve in a small terminal.
    """

    x_axis: reactive[XAxis] = reactive("epoch", repaint=False, init=False)
    show_raw: reactive[bool] = reactive(True, repaint=False, init=False)
    by_group: reactive[bool] = reactive(True, repaint=False, init=False)
    """Seeds of one configuration as their mean with a faint min–max band, or each seed."""
    only: reactive[str] = reactive("", repaint=False, init=False)
    """Only the runs with this batch size, optimizer or lr (a ``focus_tags`` value); '': all."""

    def __init__(
        self, metric: Metric, run_colors: RunColors | None = None, **widget_kwargs: Any
    ) -> None:
        super().__init__(**widget_kwargs)
        self.metric = metric
        self.run_colors = run_colors or RunColors()
        self._sessions: list[Session] = []
        self._draw_pending = False
        self._last_draw = -math.inf

    @property
    def redraw_pending(self) -> bool:
        """Whether a throttled redraw is still to come: what is shown is not the latest yet."""
        return self._draw_pending

    def update_sessions(self, sessions: Sequence[Session]) -> None:
        """Show these runs; call as often as you like, the chart redraws at most once a second."""
        self._sessions = list(sessions)
        self._schedule_draw()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._schedule_draw())
        self._schedule_draw()

    def on_resize(self) -> None:
        self._schedule_draw()  # tick counts follow the size

    def watch_x_axis(self) -> None:
        self._schedule_draw()

    def watch_show_raw(self) -> None:
        self._schedule_draw()

    def watch_by_group(self) -> None:
        self._schedule_draw()

    def watch_only(self) -> None:
        self._schedule_draw()

    def focused(self) -> list[Session]:
        """The runs the focus lets through (every run when there is no focus)."""
        if not self.only:
            return self._sessions
        return [s for s in self._sessions if self.only in focus_tags(s.config)]

    def _curve(self, session: Session) -> tuple[list, list]:
        """The run's line as drawn: accuracy, or its smoothed loss in log10."""
        xs, ys = metric_points(session, self.metric, self.x_axis)
        return (xs, _log10(smooth(ys))) if self.metric == "loss" else (xs, ys)

    def series(self) -> list[Series]:
        """What the next draw plots, downsampled, faint raw curves and bands first so lines
        stay on top. With ``by_group``, the seeds of one configuration draw as one mean with its
        min–max band, in the place of its first run, so the legend keeps the runs' order."""
        faint: list[Series] = []
        lines: list[Series] = []
        for group in drawn_groups(seed_groups(self.focused()), self.by_group):
            color = self.run_colors(group.sessions[0])
            if self.by_group and has_seeds(group):
                xs, mean, low, high = seed_band([self._curve(s) for s in group.sessions])
                faint += [Series(None, xs, low, color, faint=True)]
                faint += [Series(None, xs, high, color, faint=True)]
                lines.append(Series(group_label(group), xs, mean, color))
                continue
            for session in group.sessions:
                if self.metric == "loss" and self.show_raw:
                    xs, ys = metric_points(session, self.metric, self.x_axis)
                    faint.append(Series(None, xs, _log10(ys), color, faint=True))
                lines.append(Series(run_label(session), *self._curve(session), color))
        everything = faint + lines
        limit = max(30, min(MAX_POINTS, POINT_BUDGET // max(1, len(everything))))
        return [Series(s.label, *downsample(s.x, s.y, limit), s.color, s.faint) for s in everything]

    def _schedule_draw(self) -> None:
        """Leading-edge throttle: draw now when idle, else once when the interval is over."""
        if self._draw_pending or not self.is_mounted:
            return
        self._draw_pending = True
        delay = self._last_draw + REDRAW_INTERVAL - time.monotonic()
        if delay > 0:
            self.set_timer(delay, self._draw, name="curves-redraw")
        else:
            self.call_later(self._draw)

    def _draw(self) -> None:
        self._draw_pending = False
        self._last_draw = time.monotonic()
        plt = self.plt
        plt.clear_data()
        plt.xaxes(True, False)  # lower and left axes only: the widget's border frames the rest
        plt.yaxes(True, False)
        plotted = self.series()
        background = Color.parse(self.app.theme_variables.get("surface", "black"))
        for s in plotted:
            color = _blend(s.color, background, FAINT) if s.faint else s.color
            if s.x:
                plt.plot(s.x, s.y, marker="braille", color=color)
        self._label_axes(plotted)
        self.border_title = self._title()
        self.border_subtitle = self._legend(plotted)
        self.picture_changed()

    def _label_axes(self, plotted: list[Series]) -> None:
        """Round ticks, as many as fit; loss is plotted as log10 (plotext's own log axis breaks
        on redraw), so its ticks are labelled with the real losses."""
        xs = [x for s in plotted for x in s.x]
        ys = [y for s in plotted for y in s.y]
        if not xs:
            return
        rows, columns = max(2, self.size.height - 2), max(10, self.size.width - 8)
        integers = self.x_axis != "seconds"
        self.plt.xticks(*linear_ticks(min(xs), max(xs), columns // 10, integers=integers))
        if self.metric == "loss":
            self.plt.yticks(*log_ticks(min(ys), max(ys), rows // 2 + 1))
        else:
            self.plt.yticks(*linear_ticks(min(ys), max(ys), rows // 2 + 1))

    def _title(self) -> str:
        what = "training loss (log)" if self.metric == "loss" else "validation accuracy %"
        seeds = ""
        if self._has_groups():
            seeds = " · seeds: mean, min–max band (e: each)" if self.by_group else " · e: means"
        only = f" · only {self.only} (f: next)" if self.only else ""
        return f"{what} · x: {X_AXIS_TITLES[self.x_axis]}{seeds}{only}"

    def _has_groups(self) -> bool:
        return any(has_seeds(g) for g in seed_groups(self._sessions))

    def _legend(self, plotted: list[Series]) -> str:
        """Each run's swatch and name, when they fit on the border; else how many runs there
        are, and where their colours are named (the table below every chart)."""
        labels = [s for s in plotted if s.label is not None]
        if not labels:
            return "no runs selected"
        room = self.size.width - 4
        text = "  ".join(f"━ {s.label}" for s in labels)
        groups = seed_groups(self.focused())
        drawn = drawn_groups(groups, self.by_group)
        if len(text) <= room and len(drawn) == len(groups):
            return "  ".join(f"[{rgb_style(s.color)}]━[/] {_escape(s.label)}" for s in labels)
        if len(drawn) < len(groups):
            return f"{len(drawn)} of {len(groups):,} configurations, running ones first: f focuses"
        return f"{len(self.focused())} runs: colours as in the table"


def _log10(values: Sequence[float]) -> list[float]:
    return [math.log10(max(v, 1e-12)) for v in values]


def _blend(color: RGB, background: Color, amount: float) -> RGB:
    return Color(*color).blend(background, amount).rgb


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
