"""Steps to target against batch size, and the wall-time trade-off, as charts (the same
analysis in plain words is ``report.scaling_text``).

Runs are grouped by everything but the batch size (data set, model, optimizer, lr rule, target):
only within such a group do steps to target measure what the batch size alone does. Per group:

- steps (or samples) to the target against batch size, log-log, with the perfect-scaling line
  and McCandlish et al.'s fit S(B) = S_min + E_min/B, which gives B_crit = E_min/S_min;
- time per epoch and time to target against batch size: the first falls with the batch (better
  hardware use), the second turns up again (more epochs needed), so one batch size is fastest.

The ``draw_*`` functions draw onto any plotext-API object (the ``plotext`` module, or a
textual-plotext widget's ``plt``), with logs taken here: plotext's own log axis breaks on redraw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tui_lab.analysis.scaling import (
    ScalingRow,
    best_lr_rows,
    fit_scaling,
    perfect_scaling_line,
    rows_from_sessions,
    time_optimal_batch,
)
from tui_lab.report.comparison import noise_at_target
from tui_lab.report.plotting import PALETTE, RGB, log_ticks, render_plotext, short_number
from tui_lab.schema import Session
from tui_lab.schema.analysis import BatchOptima, ScalingFit

RUN_COLOR, FIT_COLOR, REFERENCE_COLOR, NEVER_COLOR = PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[6]
FIT_POINTS = 40  # the fitted curve, evenly spaced in log batch size
NEVER_MARKER = "×"
PERFECT_MARKER = "·"  # a dotted reference line, apart from the fit's solid one without colour


@dataclass(frozen=True)
class ScalingGroup:
    """Runs that differ only in batch size, with what the analysis makes of them.

    ``rows`` has one row per batch size (its seeds together); under the best-lr protocol the
    row of the best lr, with every lr tried in ``tried``.
    """

    label: str
    target_accuracy: float
    rows: list[ScalingRow]
    fit: ScalingFit | None
    optima: BatchOptima
    noise_scales: list[float]  # each run's B_simple where it reached the target, if measured
    best_lr: bool = False
    tried: list[ScalingRow] = field(default_factory=list)
    stopped_at_target: bool = False  # runs stopped at the target: final accuracy is no measure

    @property
    def batch_sizes_reached(self) -> int:
        return len({r.batch_size for r in self.rows if r.reached_target})


@dataclass(frozen=True)
class LegendEntry:
    marker: str
    label: str
    color: RGB


@dataclass(frozen=True)
class ChartText:
    """A chart's title and legend, drawn outside the plot (a widget's border, or text lines)
    so that they never hide a point in a small terminal."""

    title: str
    legend: list[LegendEntry]


def _group_key(session: Session) -> str:
    cfg = session.config
    best_lr = cfg.protocol == "best-lr"
    optimizer = cfg.optimizer.model_dump_json(exclude={"lr"} if best_lr else None)
    return "|".join(
        [
            str(cfg.dataset),
            str(cfg.model),  # the user's names its code's hash: two versions, two groups
            optimizer,
            cfg.lr_scaling.model_dump_json(),
            f"{cfg.target_accuracy:g}",
            cfg.protocol if best_lr else f"{cfg.lr_factor}",
        ]
    )


def _group_label(session: Session) -> str:
    cfg = session.config
    if cfg.protocol == "best-lr":
        momentum = f", m={cfg.optimizer.momentum:g}" if cfg.optimizer.momentum else ""
        return f"{cfg.dataset}/{cfg.model} {cfg.optimizer.name}{momentum}, best lr per batch"
    label = f"{cfg.dataset}/{cfg.model} {cfg.optimizer.label()}"
    if cfg.lr_factor is not None:
        label += f" ×{cfg.lr_factor:g}"
    if cfg.lr_scaling.rule != "none":
        label += f", lr {cfg.lr_scaling.rule} from b={cfg.lr_scaling.base_batch_size}"
    if cfg.lr_scaling.warmup_epochs:
        label += f", warm-up {cfg.lr_scaling.warmup_epochs:g} ep"
    return label


def scaling_groups(sessions: Iterable[Session]) -> list[ScalingGroup]:
    """Group runs that differ only in batch size (and seed, and under best-lr in lr); each
    with its fit and optima.

    Runs still running, or stopped (killed), are left out: partial numbers make no verdict.
    """
    grouped: dict[str, list[Session]] = {}
    for session in (s for s in sessions if s.finished):
        grouped.setdefault(_group_key(session), []).append(session)
    groups = []
    for members in grouped.values():
        tried = sorted(rows_from_sessions(members), key=lambda r: (r.batch_size, r.lr or 0.0))
        best_lr = members[0].config.protocol == "best-lr"
        rows = best_lr_rows(tried) if best_lr else tried
        groups.append(
            ScalingGroup(
                label=_group_label(members[0]),
                target_accuracy=members[0].config.target_accuracy,
                rows=rows,
                fit=fit_scaling(rows),
                optima=time_optimal_batch(rows),
                noise_scales=[  # a ratio and a log axis need a positive, finite value
                    p.b_simple
                    for s in members
                    if (p := noise_at_target(s)) is not None
                    and p.b_simple is not None
                    and 0 < p.b_simple < math.inf
                ],
                best_lr=best_lr,
                tried=tried,
                stopped_at_target=any(s.config.stop_at_target for s in members),
            )
        )
    return groups


def _log10(values: Sequence[float]) -> list[float]:
    return [math.log10(v) for v in values]


def _batch_ticks(batch_sizes: Sequence[int], most: int) -> tuple[list[float], list[str]]:
    """The batch sizes run, as ticks; thinned (keeping both ends) when they would crowd."""
    sizes = sorted(set(batch_sizes))
    if len(sizes) > max(2, most):
        step = math.ceil((len(sizes) - 1) / (max(2, most) - 1))
        sizes = sorted({*sizes[::step], sizes[-1]})
    return _log10(sizes), [short_number(b) for b in sizes]


@dataclass(frozen=True)
class Series:
    """Points in real units (logs are taken when drawn), as a line, as points, or both.

    Points are drawn with the legend entry's marker, and a line with ``line_marker``: series
    read apart by their marks, not by colour alone (piped output has none).
    """

    batch_sizes: list[float]
    values: list[float]
    entry: LegendEntry
    line: bool = True
    points: bool = False
    line_marker: str = "braille"


def _draw_log_log(
    plt: Any,
    group: ScalingGroup,
    series: list[Series],
    never: Sequence[ScalingRow],
    size: tuple[int, int],
) -> list[LegendEntry]:
    """Draw series on log-log axes, and runs that ``never`` reached the target as marks
    above the data; returns the legend of what was drawn."""
    drawn = [s for s in series if s.values]
    ys = _log10([v for s in drawn for v in s.values]) or [0.0, 1.0]
    legend = []
    for s in drawn:
        xs, logs = _log10(s.batch_sizes), _log10(s.values)
        if s.line:
            plt.plot(xs, logs, marker=s.line_marker, color=s.entry.color)
        if s.points:
            plt.scatter(xs, logs, marker=s.entry.marker, color=s.entry.color)
        if s.entry not in legend:  # one entry for the seed ranges of every batch size
            legend.append(s.entry)
    if never:
        low, high = min(ys), max(ys)
        top = high + max(0.15 * (high - low), 0.15)
        marks = _log10([r.batch_size for r in never])
        plt.scatter(marks, [top] * len(marks), marker=NEVER_MARKER, color=NEVER_COLOR)
        legend.append(LegendEntry(NEVER_MARKER, "never reached target", NEVER_COLOR))
        ys.append(top)
    columns, lines = size
    plt.xaxes(True, False)  # lower and left axes only: a border or the text around frames it
    plt.yaxes(True, False)
    plt.xticks(*_batch_ticks([r.batch_size for r in group.rows], max(2, columns // 8)))
    plt.yticks(*log_ticks(min(ys), max(ys), max(2, lines // 3)))
    plt.xlabel("batch size (log)")
    return legend


def draw_steps_to_target(
    plt: Any, group: ScalingGroup, *, samples: bool = False, size: tuple[int, int] = (80, 20)
) -> ChartText:
    """Steps (or samples) to the target against batch size, log-log.

    ``size`` is the plot's (columns, lines), for the number of ticks. Runs that never reached
    the target are marked above the data; the perfect-scaling line halves the steps per
    doubling (flat in samples) from the smallest batch that reached the target.
    """

    def value(batch: float, steps: float) -> float:
        return batch * steps if samples else steps

    rows = group.rows
    reached = [r for r in rows if r.steps_to_target]
    perfect = perfect_scaling_line(rows)
    series = [
        Series(
            [b for b, _ in perfect],
            [value(b, steps) for b, steps in perfect],
            LegendEntry(PERFECT_MARKER, "perfect scaling", REFERENCE_COLOR),
            line_marker=PERFECT_MARKER,
        )
    ]
    fit = group.fit
    if fit is not None and fit.s_min + fit.e_min > 0:
        low, high = math.log10(rows[0].batch_size), math.log10(rows[-1].batch_size)
        grid = [10 ** (low + (high - low) * i / (FIT_POINTS - 1)) for i in range(FIT_POINTS)]
        name = f"fit, B_crit≈{fit.b_crit:.3g}" if fit.b_crit is not None else "fit, S_min≈0"
        fitted = [value(b, fit.steps(b)) for b in grid]
        series.append(Series(grid, fitted, LegendEntry("─", name, FIT_COLOR)))
    series.append(
        Series(
            [r.batch_size for r in reached],
            [value(r.batch_size, r.steps_to_target or 0) for r in reached],
            LegendEntry(
                "●", "runs" if rows and rows[0].seeds == 1 else "median over seeds", RUN_COLOR
            ),
            line=False,
            points=True,
        )
    )
    series += [
        Series(
            [r.batch_size, r.batch_size],
            [value(r.batch_size, r.steps.low), value(r.batch_size, r.steps.high)],
            LegendEntry("│", "range over seeds", RUN_COLOR),
        )
        for r in reached
        if r.steps is not None and r.steps.low < r.steps.high
    ]
    never = [r for r in rows if not r.steps_to_target]
    legend = _draw_log_log(plt, group, series, never, size)
    if group.best_lr:  # the chosen lr beside each point, on the side with room for it
        low, high = math.log10(rows[0].batch_size), math.log10(rows[-1].batch_size)
        gap = 2 * (high - low) / max(size[0], 1)  # two columns
        for r in reached:
            x = math.log10(r.batch_size)
            y = math.log10(value(r.batch_size, r.steps_to_target or 1))
            left = x > (low + high) / 2
            plt.text(
                f"lr {r.lr or 0.0:.2g}",
                x - gap if left else x + gap,
                y,
                color=RUN_COLOR,
                alignment="right" if left else "left",
            )
        legend.append(LegendEntry("lr", "best lr beside each point", RUN_COLOR))
    what = "samples" if samples else "steps"
    return ChartText(f"{what} to {group.target_accuracy:.0%} vs batch size (log-log)", legend)


def draw_time_tradeoff(
    plt: Any, group: ScalingGroup, *, size: tuple[int, int] = (80, 20)
) -> ChartText:
    """Seconds per epoch and seconds to target against batch size, log-log; the fastest batch
    to the target is marked by a vertical line."""
    rows = group.rows
    per_epoch = [r for r in rows if r.seconds_per_epoch]
    to_target = [r for r in rows if r.seconds_to_target]
    series = [
        Series(
            [r.batch_size for r in per_epoch],
            [r.seconds_per_epoch or 0.0 for r in per_epoch],
            LegendEntry("●", "s/epoch", RUN_COLOR),
            points=True,
        ),
        Series(
            [r.batch_size for r in to_target],
            [r.seconds_to_target or 0.0 for r in to_target],
            LegendEntry("◆", "s to target", FIT_COLOR),
            points=True,
        ),
    ]
    never = [r for r in rows if r.seconds_to_target is None]
    legend = _draw_log_log(plt, group, series, never, size)
    if instant := [r for r in rows if r.seconds_to_target == 0]:
        sizes = ", ".join(str(r.batch_size) for r in instant)
        legend.append(
            LegendEntry("?", f"0 s to target (not on a log axis): batch {sizes}", NEVER_COLOR)
        )
    best = group.optima.fastest_batch_size
    if best is not None:
        plt.vline(math.log10(best), REFERENCE_COLOR)
        legend.append(LegendEntry("│", f"fastest to target: batch {best}", REFERENCE_COLOR))
    title = f"seconds per epoch and to {group.target_accuracy:.0%} vs batch size (log-log)"
    return ChartText(title, legend)


def render_chart(draw: Callable[..., ChartText], width: int, height: int) -> str:
    """One chart as terminal text in ANSI colours: title, plot, and the legend below it.

    ``draw(plt, size=(columns, lines))`` draws onto the ``plotext`` module (its global figure is
    cleared before and after, so charts do not leak into each other).
    """
    import plotext  # here: the table alone (``compare`` without ``--analysis``) draws no chart

    drawn: list[ChartText] = []
    chart = render_plotext(
        lambda plt: drawn.append(draw(plt, size=(width, height))),
        width,
        height,
        terminal_colors=True,  # readable on light and dark terminals
    )
    text = drawn[0]
    key = "  ".join(f"{plotext.colorize(e.marker, e.color)} {e.label}" for e in text.legend)
    return f"{text.title}\n{chart}{key}"


def render_report(group: ScalingGroup, width: int = 80, height: int = 18) -> list[str]:
    """The group's three charts for the terminal: steps, samples, and time to target."""
    return [
        render_chart(partial(draw_steps_to_target, group=group), width, height),
        render_chart(partial(draw_steps_to_target, group=group, samples=True), width, height),
        render_chart(partial(draw_time_tradeoff, group=group), width, height),
    ]
