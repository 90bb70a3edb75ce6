"""The comparison table when configurations were trained from several seeds: one row per
configuration with mean ± sd over its seeds, medians and ranges of epochs and steps to target,
and how many seeds reached it. Single-seed sweeps keep the one-row-per-session table."""

from __future__ import annotations

import math

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tui_lab.analysis.seeds import SeedGroup, Spread, seed_groups
from tui_lab.report.comparison import (
    STAR_NOTE,
    TABLE_STYLE,
    SortKey,
    comparison_rows,
    comparison_view,
    field_text,
    format_bytes,
    last_noise_scale,
    stopped_at_target,
    table_notes,
)
from tui_lab.report.vocabulary import status_word
from tui_lab.schema import OPTIMIZER_NAMES, Session


def _decimals(value: float) -> int:
    """Decimals for three significant digits (as the single-seed table shows times)."""
    return max(0, 2 - math.floor(math.log10(abs(value)))) if value else 2


def _mean_sd(spread: Spread | None, missing: str = "—") -> str:
    """``1.23±0.05``: the mean to three significant digits, but no finer than its sd, which
    gets one significant digit (two when it starts with a 1): ``0.065±0.005``, ``0.08±0.01``."""
    if spread is None:
        return missing
    decimals = _decimals(spread.mean)
    if spread.n == 1:
        return f"{spread.mean:.{decimals}f}"
    if spread.sd > 0:
        exponent = math.floor(math.log10(spread.sd))
        leading_one = f"{spread.sd / 10**exponent:.0f}" == "1"
        decimals = min(decimals, max(0, -exponent + leading_one))
    return f"{spread.mean:.{decimals}f}±{spread.sd:.{decimals}f}"


def _batch_label(group: SeedGroup) -> str:
    cfg = group.config
    return "full" if cfg.batch_size_requested == "full" else str(cfg.batch_size)


def mean_of(group: SeedGroup, name: str) -> float | None:
    """The mean over seeds of a Summary field (None if no seed has it)."""
    spread = group.spread(name)
    return None if spread is None else spread.mean


def _missing_last(value: float | None, sign: float = 1.0) -> tuple[bool, float]:
    return (value is None, sign * (value or 0.0))


SORT_KEYS = {
    "batch": lambda g: (g.config.optimizer.name, g.config.batch_size, g.config.lr),
    "time": lambda g: _missing_last(mean_of(g, "seconds_per_epoch")),
    "target": lambda g: _missing_last(mean_of(g, "seconds_to_target")),
    "accuracy": lambda g: _missing_last(mean_of(g, "final_accuracy"), -1.0),
}


def best_groups(groups: list[SeedGroup]) -> tuple[SeedGroup | None, SeedGroup | None]:
    """The configuration fastest to the target on average (among those whose median seed
    reached it), and the one with the highest mean final accuracy."""
    timed = [
        (seconds, g)
        for g in groups
        if g.median_to_target() is not None
        and (seconds := mean_of(g, "seconds_to_target")) is not None
    ]
    scored = [(acc, g) for g in groups if (acc := mean_of(g, "final_accuracy")) is not None]
    fastest = min(timed, key=lambda pair: pair[0], default=(None, None))[1]
    accurate = max(scored, key=lambda pair: pair[0], default=(None, None))[1]
    if stopped_at_target(s for g in groups for s in g.sessions):
        accurate = None
    return fastest, accurate


def not_completed(groups: list[SeedGroup]) -> list[str]:
    """``sgd b=1 s=2: diverged`` for every seed that did not complete."""
    return [
        f"{s.config.label()}: {status_word(s.status)}"
        for g in groups
        for s in g.sessions
        if s.status != "completed"
    ]


def seeds_table(groups: list[SeedGroup], title: str = "Batch-size comparison") -> Table:
    """One row per configuration, statistics over its seeds; fits 80 columns."""
    targets = sorted({g.config.target_accuracy for g in groups})
    target_text = ", ".join(f"{t:.0%}" for t in targets) or "—"
    setups = {f"{g.config.dataset}/{g.config.model}" for g in groups}
    if len(setups) == 1:
        title = f"{title}: {next(iter(setups))}"
    seeds = sorted({g.n for g in groups})
    fastest, accurate = best_groups(groups)
    caption = [
        f"mean±sd over {'/'.join(map(str, seeds))} seeds; →t: seeds that reached "
        f"{target_text} validation accuracy",
        "ep→t: median epochs to target (range); s→t: training seconds to it",
        "s/ep: training seconds per epoch",
        "★ fastest to the target" if accurate is None else f"{STAR_NOTE} (means)",
    ]
    stacked = sorted({_batch_label(g) for g in groups if g.sessions[0].stacked > 1}, key=len)
    if stacked:
        caption.append(
            f"batch {', '.join(stacked)}: seeds trained as one stacked model, "
            "seconds are the whole stack's"
        )
    failed = not_completed(groups)
    if failed:
        caption.append("not completed: " + "; ".join(failed))
    caption += table_notes([s for g in groups for s in g.sessions])
    table = Table(title=title, caption="\n".join(caption), caption_justify="left", **TABLE_STYLE)
    for name in SEED_COLUMNS:
        table.add_column(name, justify="left" if name == "optim" else "right")
    for group in groups:
        table.add_row(*seeds_cells(group, fastest, accurate))
    return table


# The columns of the per-configuration table, in the order shown (the app's Compare too).
SEED_COLUMNS = ["optim", "lr", "batch", "→t", "s/ep", "ep→t", "s→t", "final"]


def seeds_cells(
    group: SeedGroup, fastest: SeedGroup | None = None, accurate: SeedGroup | None = None
) -> list[str]:
    """One configuration's row of SEED_COLUMNS; ★ on the fastest and the most accurate."""
    cfg = group.config
    epochs = group.spread("epochs_to_target")
    to_target = _mean_sd(group.spread("seconds_to_target"), "never")
    if group is fastest:
        to_target += "★"
    final_spread = group.spread("final_accuracy")
    final = "—" if final_spread is None else final_spread.mean_text(".1%")
    if group is accurate:
        final += "★"
    return [
        cfg.optimizer.name,
        field_text("lr", cfg.lr),
        _batch_label(group),
        f"{group.reached}/{group.n}",
        _mean_sd(group.spread("seconds_per_epoch")),
        "never" if epochs is None else epochs.median_text(),
        to_target,
        final,
    ]


def _median(spread: Spread | None) -> float | None:
    return None if spread is None else spread.median


# What each of SEED_COLUMNS sorts by (None: no value, listed last).
SEED_SORT_KEYS = {
    "optim": lambda g: (OPTIMIZER_NAMES.index(g.config.optimizer.name), g.config.batch_size),
    "lr": lambda g: g.config.lr,
    "batch": lambda g: (
        g.config.batch_size_requested == "full",
        g.config.batch_size,
        OPTIMIZER_NAMES.index(g.config.optimizer.name),
        g.config.lr,
    ),
    "→t": lambda g: g.reached / g.n,
    "s/ep": lambda g: mean_of(g, "seconds_per_epoch"),
    "ep→t": lambda g: _median(g.spread("epochs_to_target")),
    "s→t": lambda g: mean_of(g, "seconds_to_target") if g.median_to_target() else None,
    "final": lambda g: mean_of(g, "final_accuracy"),
}


def seeds_resources_table(groups: list[SeedGroup]) -> Table | None:
    """Steps and samples to target (median and range), peak memory and noise scale per group."""
    if not any(g.reached or g.sessions[0].peak_memory or g.sessions[0].noise_scale for g in groups):
        return None
    table = Table(title="Steps, memory and noise scale (over seeds)", **TABLE_STYLE)
    for name in ["optim", "lr", "batch", "steps→t", "samples→t", "peak mem", "B_noise"]:
        table.add_column(name, justify="left" if name == "optim" else "right")
    for group in groups:
        steps, samples = group.spread("steps_to_target"), group.spread("samples_to_target")
        peaks = [s.peak_memory.peak_bytes for s in group.sessions if s.peak_memory]
        noise = Spread.of(last_noise_scale(s) for s in group.sessions)
        table.add_row(
            group.config.optimizer.name,
            field_text("lr", group.config.lr),
            _batch_label(group),
            "never" if steps is None else steps.median_text(",d"),
            "never" if samples is None else samples.median_text(",d"),
            format_bytes(max(peaks)) if peaks else "—",
            _mean_sd(noise),
        )
    return table


def sweep_view(
    sessions: list[Session], sort: SortKey = "batch", title: str = "Batch-size comparison"
) -> Group:
    """The comparison for any sessions: per configuration over seeds where any configuration
    has several, else the one-row-per-session table."""
    groups = seed_groups(sessions)
    if all(g.n == 1 for g in groups):
        return comparison_view(comparison_rows(sessions, sort), title=title)
    groups.sort(key=SORT_KEYS[sort])
    parts: list[RenderableType] = [seeds_table(groups, title)]
    extra = seeds_resources_table(groups)
    if extra is not None:
        parts += [extra, Text("B_noise: gradient noise scale at the end of the runs", style="dim")]
    return Group(*parts)
