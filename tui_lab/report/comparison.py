"""The batch-size experiment's table: one row per session, times normalised to the fastest.

A second, smaller table holds what does not fit in 80 columns beside it: steps and samples to
the target, peak memory and the gradient noise scale (the measured critical batch size).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tui_lab.report.vocabulary import COLUMN_LABELS, NOT_REACHED, lr_text, status_markup
from tui_lab.schema import OPTIMIZER_NAMES, Session, Summary
from tui_lab.schema.analysis import MemoryPeak, NoiseScalePoint, stable
from tui_lab.schema.session import at_chance

CONTENDED_MARK = "~"  # after a time taken while other work held the cores
CONTENDED_NOTE = "\n~ timed on a busy machine (other work held the cores): not comparable"

# One space of padding plus the box's space divider between columns: the table fits 80 columns.
TABLE_STYLE: dict = {"box": box.SIMPLE_HEAD, "pad_edge": False, "padding": (0, 1, 0, 0)}

STAR_NOTE = "★ fastest to the target; most accurate at the end"

LEFT_ALIGNED = {"data_model", "optimizer", "status"}

SortKey = Literal["batch", "time", "target", "accuracy"]


@dataclass(frozen=True)
class ComparisonRow:
    session: Session
    seconds_per_epoch: float | None
    relative_time: float | None
    epochs_to_target: int | None
    seconds_to_target: float | None
    best_accuracy: float | None
    final_accuracy: float | None
    steps_to_target: int | None = None
    samples_to_target: int | None = None
    peak_memory: MemoryPeak | None = None
    noise_scale: NoiseScalePoint | None = None  # where the run reached its target

    @property
    def batch_label(self) -> str:
        cfg = self.session.config
        return "full" if cfg.batch_size_requested == "full" else str(cfg.batch_size)


def comparison_rows(sessions: list[Session], sort: SortKey = "batch") -> list[ComparisonRow]:
    summaries = [s.summary for s in sessions]
    times = [m.seconds_per_epoch for m in summaries if m and m.seconds_per_epoch]
    fastest = min(times) if times else None
    rows = []
    for session, summary in zip(sessions, summaries, strict=True):
        per_epoch = summary.seconds_per_epoch if summary else None
        rows.append(
            ComparisonRow(
                session=session,
                seconds_per_epoch=per_epoch,
                relative_time=per_epoch / fastest if per_epoch and fastest else None,
                epochs_to_target=summary.epochs_to_target if summary else None,
                seconds_to_target=summary.seconds_to_target if summary else None,
                best_accuracy=summary.best_accuracy if summary else None,
                final_accuracy=summary.final_accuracy if summary else None,
                steps_to_target=summary.steps_to_target if summary else None,
                samples_to_target=summary.samples_to_target if summary else None,
                peak_memory=session.peak_memory,
                noise_scale=noise_at_target(session),
            )
        )
    return sorted(rows, key=SORT_KEYS[sort])


def noise_at_target(session: Session) -> NoiseScalePoint | None:
    """The noise scale measured where the run first reached its target accuracy, if it did:
    McCandlish et al.'s critical batch size belongs to a loss level, not to a run's end."""
    return next((p for p in session.noise_scale if p.at_target), None)


def noise_missing(session: Session) -> str:
    """Why a run has no noise-scale reading at its target, in a few words for a table cell."""
    if not session.config.noise_scale.enabled:
        return "off"
    if session.summary is None or session.summary.epochs_to_target is None:
        return "t not reached"
    return "not measured"


def noise_notes(sessions: list[Session]) -> list[str]:
    """Each run's own words on readings it skipped (the probe cost more than its time share)."""
    return [
        f"{s.config.label()}: some readings not measured: {s.noise_scale_note}"
        for s in sessions
        if s.noise_scale_note
    ]


def last_noise_scale(session: Session) -> float | None:
    """The run's latest measured B_simple (the probe measures at the weights of the moment)."""
    return next((p.b_simple for p in reversed(session.noise_scale) if p.b_simple), None)


def noise_interval_text(point: NoiseScalePoint) -> str:
    """'120 (90–160)': the estimate and its 95% interval ('∞' where it is unbounded)."""
    high = "∞" if point.b_high is None else f"{point.b_high:,.0f}"
    estimate = "—" if point.b_simple is None else f"{point.b_simple:,.0f}"
    return f"{estimate} ({point.b_low:,.0f}–{high})"


def noise_verdict(point: NoiseScalePoint, n_train: int) -> str:
    """What the interval allows one to say: '' when it is a usable number."""
    if point.b_low > n_train:
        return f"exceeds the training set ({n_train:,})"
    if point.b_high is None or not stable(point.b_low, point.b_high):
        return "not yet stable"
    if point.b_simple is not None and point.b_simple > n_train:
        return f"exceeds the training set ({n_train:,})"
    return ""


def status_key(session: Session) -> str:
    """The session's status; for a completed run that ended at chance, ``collapsed`` if it had
    learned before (its best accuracy was above chance), else ``did_not_learn``."""
    summary = session.summary
    if session.status == "completed" and summary and summary.learned is False:
        return "collapsed" if learned_then_collapsed(summary) else "did_not_learn"
    return session.status


def learned_then_collapsed(summary: Summary) -> bool:
    """A run whose best accuracy was above chance but whose last was not."""
    return (
        summary.learned is False
        and summary.best_accuracy is not None
        and not at_chance(summary.best_accuracy)
    )


def collapse_text(summary: Summary) -> str:
    """'learned to 74.4% (epoch 3), then collapsed to 8.9%': what a collapsed run did."""
    final = field_text("final_accuracy", summary.final_accuracy)
    return (
        f"learned to {summary.best_accuracy:.1%} (epoch {summary.best_epoch}), "
        f"then collapsed to {final}"
    )


def contended(session: Session) -> bool:
    return bool(session.summary and session.summary.contended)


def run_order(sessions: Sequence[Session]) -> list[Session]:
    """Sweeps newest first; within one, by optimizer then batch size as numbers (1, 8, 32, 128,
    ..., full), never as text: the order every list of runs is shown in."""
    newest: dict[str, datetime] = {}
    for session in sessions:
        name = session.config.preset_name
        newest[name] = max(newest.get(name, session.created), session.created)

    def key(session: Session) -> tuple:
        cfg = session.config
        return (
            -newest[cfg.preset_name].timestamp(),
            cfg.preset_name,
            OPTIMIZER_NAMES.index(cfg.optimizer.name),
            cfg.batch_size_requested == "full",
            cfg.batch_size,
            session.created,
        )

    return sorted(sessions, key=key)


def _missing_last(value: float | None, sign: float = 1.0) -> tuple[bool, float]:
    return (value is None, sign * (value or 0.0))


SORT_KEYS = {
    "batch": lambda r: (r.session.config.optimizer.name, r.session.config.batch_size),
    "time": lambda r: _missing_last(r.seconds_per_epoch),
    "target": lambda r: _missing_last(r.seconds_to_target),
    "accuracy": lambda r: _missing_last(r.final_accuracy, -1.0),
}


def _significant(value: float) -> str:
    """Three significant digits without an exponent: 153, 12.9, 1.61, 0.139 (narrow columns)."""
    decimals = max(0, 2 - math.floor(math.log10(abs(value)))) if value else 2
    return f"{value:.{decimals}f}"


def _spec(spec: str) -> Callable[[float], str]:
    return lambda value: format(value, spec)


# How every table writes a run's numbers (a name is a Summary field, a record's key or a
# ComparisonRow's attribute), so that the app, the terminal and Markdown round alike.
FIELD_TEXT: dict[str, Callable[[float], str]] = {
    "lr": lr_text,
    "seconds_per_epoch": _significant,
    "relative_time": _significant,
    "samples_per_second": _significant,
    "final_val_loss": _significant,
    "train_seconds": _significant,  # a short run's 0.049 s is not 0.0
    "cpu_utilisation": _spec(".2f"),
    "load_average": _spec(".2f"),
    "seconds_to_target": _spec(".1f"),
    "epochs_to_target": _spec("d"),
    "steps_to_target": _spec(",d"),
    "samples_to_target": _spec(",d"),
    "best_accuracy": _spec(".1%"),
    "final_accuracy": _spec(".1%"),
}
TO_TARGET = {"epochs_to_target", "steps_to_target", "samples_to_target", "seconds_to_target"}


def field_text(name: str, value: object) -> str:
    """A field's value as the tables show it: ``seconds_per_epoch`` 4.123456 → 4.12,
    ``final_accuracy`` 0.97812 → 97.8%, a missing time to target → never, other missing → —."""
    if value is None:
        return NOT_REACHED if name in TO_TARGET else "—"
    if isinstance(value, bool) or not isinstance(value, int | float) or name not in FIELD_TEXT:
        return str(value)
    return FIELD_TEXT[name](value)


def format_bytes(count: int) -> str:
    """Binary units, about three significant digits: 312M, 1010M, 1.25G (never 0.98G)."""
    value = float(count)
    for unit in ("", "K", "M", "G"):
        if value < 1024:
            return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"
        value /= 1024
    return f"{value:.3g}T"


def lr_rule_text(rows: list[ComparisonRow]) -> str:
    """How each optimizer's lr follows the batch, where a rule or warm-up is set; else ""."""
    rules = []
    for row in rows:
        cfg = row.session.config
        scaling = cfg.lr_scaling
        if scaling.rule == "none" and not scaling.warmup_epochs:
            continue
        text = f"{cfg.optimizer.name} lr {cfg.optimizer.lr:g}"
        if scaling.rule != "none":
            text += f" at batch {scaling.base_batch_size}, scaled {scaling.rule}"
        if scaling.warmup_epochs:
            text += f", warm-up {scaling.warmup_epochs:g} epochs"
        if text not in rules:
            rules.append(text)
    return "; ".join(rules)


def best_rows(rows: list[ComparisonRow]) -> tuple[ComparisonRow | None, ComparisonRow | None]:
    """The run fastest to the target (optimal in wall time) and the most accurate one.

    Only among runs that ended: a running or stopped run's numbers are partial.
    """
    ended = [r for r in rows if r.session.finished]
    reached = [r for r in ended if r.seconds_to_target is not None]
    fastest = min(reached, key=lambda r: r.seconds_to_target or 0.0, default=None)
    finished = [r for r in ended if r.final_accuracy is not None]
    accurate = max(finished, key=lambda r: r.final_accuracy or 0.0, default=None)
    if stopped_at_target(r.session for r in rows):
        accurate = None
    return fastest, accurate


def stopped_at_target(sessions: Iterable[Session]) -> bool:
    """Did any run stop once it reached the target? Then final accuracies are where the runs
    stopped, not what they could reach: none is 'most accurate'."""
    return any(s.config.stop_at_target for s in sessions)


STOPPED_NOTE = "final: where each run stopped (stop at target), so no run is the most accurate"


def table_notes(sessions: Sequence[Session]) -> list[str]:
    """Lines under a runs table: why no run is starred for accuracy, and what collapsed runs did."""
    notes = [STOPPED_NOTE] if stopped_at_target(sessions) else []
    notes += [
        f"{s.config.label()}: {collapse_text(s.summary)}"
        for s in sessions
        if s.summary and status_key(s) == "collapsed"
    ]
    return notes


def comparison_table(rows: list[ComparisonRow], title: str = "Batch-size comparison") -> Table:
    """The experiment's table; fits 80 columns (shared dataset/model go into the title)."""
    targets = sorted({r.session.config.target_accuracy for r in rows})
    target_text = ", ".join(f"{t:.0%}" for t in targets) or "—"
    setups = {f"{r.session.config.dataset}/{r.session.config.model}" for r in rows}
    shared_setup = len(setups) == 1
    if shared_setup:
        title = f"{title}: {next(iter(setups))}"
    fastest, accurate = best_rows(rows)
    rules = lr_rule_text(rows)
    table = Table(
        title=title,
        caption="s/ep: training seconds per epoch; ×time: s/ep over the fastest's (1.00)\n"
        f"ep→t, s→t: epochs and training seconds to {target_text} validation accuracy\n"
        + ("★ fastest to the target" if accurate is None else STAR_NOTE)
        + (CONTENDED_NOTE if any(contended(r.session) for r in rows) else "")
        + (f"\nlr as run: {rules}" if rules else "")
        + "".join(f"\n{note}" for note in table_notes([r.session for r in rows])),
        caption_justify="left",
        **TABLE_STYLE,
    )
    keys = [] if shared_setup else ["data_model"]
    keys += ["optimizer", "lr", "batch", "status", "seconds_per_epoch", "relative_time"]
    keys += ["epochs_to_target", "seconds_to_target", "best_accuracy", "final_accuracy"]
    columns = [(COLUMN_LABELS[k], "left" if k in LEFT_ALIGNED else "right") for k in keys]
    for name, justify in columns:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        cfg = row.session.config
        to_target = field_text("seconds_to_target", row.seconds_to_target)
        if row is fastest:
            to_target += "★"
        final = field_text("final_accuracy", row.final_accuracy)
        if row is accurate:
            final += "★"
        cells = [] if shared_setup else [f"{cfg.dataset}/{cfg.model}"]
        cells += [
            cfg.optimizer.name,
            field_text("lr", cfg.lr),
            row.batch_label,
            status_markup(status_key(row.session)),
            field_text("seconds_per_epoch", row.seconds_per_epoch)
            + (CONTENDED_MARK if contended(row.session) else ""),
            field_text("relative_time", row.relative_time),
            field_text("epochs_to_target", row.epochs_to_target),
            to_target,
            field_text("best_accuracy", row.best_accuracy),
            final,
        ]
        table.add_row(*cells)
    return table


MEMORY_NOTES = {
    "cuda_peak_allocated": "peak mem on cuda: the run's tensors at their peak",
    "process_peak_rss": "peak mem on cpu: the process's peak RSS, which later runs inherit",
}


def resources_table(rows: list[ComparisonRow]) -> Table | None:
    """Steps and samples to target, peak memory and noise scale; None if no run has any.

    The optimizer column appears only when runs differ in it, like data/model in the main table.
    """
    if not any(r.steps_to_target or r.peak_memory or r.noise_scale for r in rows):
        return None
    several_optimizers = len({r.session.config.optimizer.name for r in rows}) > 1
    table = Table(title="Steps, memory and noise scale", **TABLE_STYLE)
    columns = ["optim"] if several_optimizers else []
    columns += ["batch", "steps→t", "samples→t", "peak mem", "B_noise at t"]
    for name in columns:
        table.add_column(name, justify="left" if name == "optim" else "right")
    for row in rows:
        cells = [row.session.config.optimizer.name] if several_optimizers else []
        cells += [
            row.batch_label,
            field_text("steps_to_target", row.steps_to_target),
            field_text("samples_to_target", row.samples_to_target),
            format_bytes(row.peak_memory.peak_bytes) if row.peak_memory else "—",
            noise_missing(row.session)
            if row.noise_scale is None
            else noise_interval_text(row.noise_scale),
        ]
        table.add_row(*cells)
    return table


def resources_notes(rows: list[ComparisonRow]) -> list[str]:
    """What the second table's columns measure (memory depends on the device)."""
    notes = [
        "B_noise at t: gradient noise scale tr(Σ)/|G|² (95% interval) where the run reached "
        "the target, which predicts the critical batch size (McCandlish et al. 2018)",
        *noise_notes([r.session for r in rows]),
    ]
    sources = sorted({r.peak_memory.source for r in rows if r.peak_memory})
    return notes + [MEMORY_NOTES[source] for source in sources]


def comparison_view(rows: list[ComparisonRow], title: str = "Batch-size comparison") -> Group:
    """The experiment's table and, below it, the steps/memory/noise-scale table with its notes."""
    parts: list[RenderableType] = [comparison_table(rows, title)]
    extra = resources_table(rows)
    if extra is not None:
        parts += [extra, Text("\n".join(resources_notes(rows)), style="dim")]
    return Group(*parts)


def summary_records(loaded: Sequence[tuple[Path, Session]]) -> list[dict[str, object]]:
    """One flat record per run, in run order, with every summary field: what ``compare --format
    csv|json|markdown`` writes for a spreadsheet, a script or a paper."""
    by_id = {id(session): path for path, session in loaded}
    records = []
    for session in run_order([session for _, session in loaded]):
        cfg, summary = session.config, session.summary
        record: dict[str, object] = {
            "file": str(by_id[id(session)]),
            "preset": cfg.preset_name,
            "dataset": str(cfg.dataset),
            "model": str(cfg.model),
            "optimizer": cfg.optimizer.name,
            "batch": "full" if cfg.batch_size_requested == "full" else cfg.batch_size,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "device": cfg.device,
            "status": status_key(session),
        }
        fields = Summary.model_fields
        record.update({name: getattr(summary, name) if summary else None for name in fields})
        records.append(record)
    return records


def markdown_table(records: list[dict[str, object]]) -> str:
    """A GitHub-flavoured Markdown table of the records, for a reader: numbers rounded as the
    terminal table rounds them (CSV and JSON keep every digit, for scripts)."""
    if not records:
        return ""
    columns = list(records[0])

    def cell(name: str, value: object) -> str:
        return field_text(name, value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, r[c]) for c in columns) + " |" for r in records]
    return "\n".join(lines) + "\n"
