"""The batch-size experiment's table: one row per session, times normalised to the fastest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rich import box
from rich.table import Table

from tui_lab.schema import Session

STATUS_TEXT = {
    "completed": "done",
    "running": "running",
    "interrupted": "[yellow]stopped[/]",
    "diverged": "[bold red]diverged[/]",
    "out_of_memory": "[bold red]oom[/]",
    "failed": "[bold red]failed[/]",
}

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
            )
        )
    return sorted(rows, key=SORT_KEYS[sort])


def _missing_last(value: float | None, sign: float = 1.0) -> tuple[bool, float]:
    return (value is None, sign * (value or 0.0))


SORT_KEYS = {
    "batch": lambda r: (r.session.config.optimizer.name, r.session.config.batch_size),
    "time": lambda r: _missing_last(r.seconds_per_epoch),
    "target": lambda r: _missing_last(r.seconds_to_target),
    "accuracy": lambda r: _missing_last(r.final_accuracy, -1.0),
}


def _fmt(value: float | None, spec: str, missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def best_rows(rows: list[ComparisonRow]) -> tuple[ComparisonRow | None, ComparisonRow | None]:
    """The run fastest to the target (optimal in wall time) and the most accurate one."""
    reached = [r for r in rows if r.seconds_to_target is not None]
    fastest = min(reached, key=lambda r: r.seconds_to_target or 0.0, default=None)
    finished = [r for r in rows if r.final_accuracy is not None]
    accurate = max(finished, key=lambda r: r.final_accuracy or 0.0, default=None)
    return fastest, accurate


def comparison_table(rows: list[ComparisonRow], title: str = "Batch-size comparison") -> Table:
    """The experiment's table; fits 80 columns (shared dataset/model go into the title)."""
    targets = sorted({r.session.config.target_accuracy for r in rows})
    target_text = ", ".join(f"{t:.0%}" for t in targets) or "—"
    setups = {f"{r.session.config.dataset}/{r.session.config.model}" for r in rows}
    shared_setup = len(setups) == 1
    if shared_setup:
        title = f"{title}: {next(iter(setups))}"
    fastest, accurate = best_rows(rows)
    table = Table(
        title=title,
        caption=f"ep→t, s→t: epochs and training seconds to {target_text} validation accuracy; "
        "★ fastest to target, most accurate at the end",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    columns = [] if shared_setup else [("data/model", "left")]
    columns += [
        ("optim", "left"),
        ("lr", "right"),
        ("batch", "right"),
        ("status", "left"),
        ("s/ep", "right"),
        ("×fast", "right"),
        ("ep→t", "right"),
        ("s→t", "right"),
        ("best", "right"),
        ("final", "right"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        cfg = row.session.config
        status = row.session.status
        to_target = _fmt(row.seconds_to_target, ".1f", "never")
        if row is fastest:
            to_target += "★"
        final = _fmt(row.final_accuracy, ".1%")
        if row is accurate:
            final += "★"
        cells = [] if shared_setup else [f"{cfg.dataset}/{cfg.model}"]
        cells += [
            cfg.optimizer.name,
            f"{cfg.lr:.3g}",
            row.batch_label,
            STATUS_TEXT[status],
            _fmt(row.seconds_per_epoch, ".3f"),
            _fmt(row.relative_time, ".2f"),
            str(row.epochs_to_target) if row.epochs_to_target is not None else "never",
            to_target,
            _fmt(row.best_accuracy, ".1%"),
            final,
        ]
        table.add_row(*cells)
    return table
