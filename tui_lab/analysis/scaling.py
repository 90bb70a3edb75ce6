"""Steps to target against batch size: McCandlish et al.'s fit and the time-optimal batch size.

Shallue et al. 2018 found three regimes: perfect scaling (doubling the batch halves the steps),
diminishing returns, and a plateau. McCandlish et al. 2018 model this as
(S/S_min - 1)(E/E_min - 1) = 1 with E = B S, which is S(B) = S_min + E_min/B: linear in 1/B.
S_min is the fewest steps any batch can need, E_min the fewest samples (the batch-1 limit), and
B_crit = E_min/S_min the batch size where both are within a factor of two of their minimum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tui_lab.analysis.seeds import SeedGroup, Spread, decided, seed_groups
from tui_lab.schema.analysis import BatchOptima, ScalingFit
from tui_lab.schema.session import Session


@dataclass(frozen=True)
class ScalingRow:
    """One configuration (one run, or its seeds together) as the scaling charts see it.

    Steps and samples to target are medians over the seeds (a seed that never reached the target
    counts as infinitely many), None when half the seeds or more never reached it; times and
    accuracies are means over the seeds that have them, with their spread beside them.
    """

    batch_size: int
    steps_to_target: float | None
    samples_to_target: float | None
    seconds_to_target: float | None
    seconds_per_epoch: float | None
    final_accuracy: float | None
    label: str = ""
    lr: float | None = None
    learned: bool = True  # False: it ended at chance accuracy (see recorder.learned)
    contended: bool = False  # its timings were taken while other work held the cores
    seeds: int = 1
    reached: int = 0
    accuracy: Spread | None = None  # final accuracy, per seed
    seconds: Spread | None = None  # seconds to target, per seed that reached it
    steps: Spread | None = None  # steps to target, per seed that reached it
    peak_accuracy: float | None = None  # the best validation accuracy of any seed, any epoch
    peak_epoch: int | None = None  # the epoch it was reached at

    @property
    def reached_target(self) -> bool:
        return self.steps_to_target is not None


def row_from_group(group: SeedGroup) -> ScalingRow:
    """The statistics of one configuration's seeds, as a scaling row."""
    seconds = group.spread("seconds_to_target")
    accuracy = group.spread("final_accuracy")
    per_epoch = group.spread("seconds_per_epoch")
    steps = group.median_to_target("steps_to_target")
    summaries = [s.summary for s in group.sessions if s.summary and s.summary.best_accuracy]
    peak = max(summaries, key=lambda m: m.best_accuracy or 0.0, default=None)
    return ScalingRow(
        batch_size=group.config.batch_size,
        steps_to_target=steps,
        samples_to_target=group.median_to_target("samples_to_target"),
        seconds_to_target=seconds.mean if seconds and steps is not None else None,
        seconds_per_epoch=per_epoch.mean if per_epoch else None,
        final_accuracy=accuracy.mean if accuracy else None,
        label=group.config.group_label(),
        lr=group.config.lr,
        seeds=group.n,
        reached=group.reached,
        accuracy=accuracy,
        seconds=seconds,
        steps=group.spread("steps_to_target"),
        peak_accuracy=peak.best_accuracy if peak else None,
        peak_epoch=peak.best_epoch if peak else None,
        learned=any(not (s.summary and s.summary.learned is False) for s in group.sessions),
        contended=any(s.summary and s.summary.contended for s in group.sessions),
    )


def rows_from_sessions(sessions: Iterable[Session]) -> list[ScalingRow]:
    """One row per configuration (its seeds together); fit rows of one optimizer at a time."""
    return [row_from_group(group) for group in seed_groups(sessions)]


def best_lr_rows(rows: Sequence[ScalingRow]) -> list[ScalingRow]:
    """Shallue et al.'s protocol: per batch size, the lr that reached the target in the fewest
    (median) steps; where no lr reached it, the most accurate one. Sorted by batch size."""
    by_batch: dict[int, list[ScalingRow]] = {}
    for row in rows:
        by_batch.setdefault(row.batch_size, []).append(row)
    return [min(tried, key=_best_lr_order) for _, tried in sorted(by_batch.items())]


def _best_lr_order(row: ScalingRow) -> tuple[bool, float, float]:
    return (
        row.steps_to_target is None,
        row.steps_to_target or 0.0,
        -(row.final_accuracy or 0.0),
    )


@dataclass(frozen=True)
class Verdict:
    """The best row by one measure, the runner-up, and whether the difference is decided
    (None: one seed on a side, nothing to test; see analysis.seeds for the rule)."""

    best: ScalingRow
    runner_up: ScalingRow | None
    decided: bool | None


def verdict(rows: Sequence[ScalingRow], measure: Literal["time", "accuracy"]) -> Verdict | None:
    """Fastest to the target (mean seconds) or most accurate at the end (mean final accuracy);
    ties go to the smaller batch. None when no row has the measure."""
    if measure == "time":
        ranked = sorted(
            (r for r in rows if r.seconds_to_target is not None),
            key=lambda r: (r.seconds_to_target, r.batch_size),
        )
    else:
        ranked = sorted(
            (r for r in rows if r.final_accuracy is not None),
            key=lambda r: (-(r.final_accuracy or 0.0), r.batch_size),
        )
    if not ranked:
        return None
    best = ranked[0]
    runner_up = ranked[1] if len(ranked) > 1 else None
    spreads = (best.seconds, runner_up.seconds) if measure == "time" and runner_up else None
    if measure == "accuracy" and runner_up:
        spreads = (best.accuracy, runner_up.accuracy)
    is_decided = None
    if spreads is not None and spreads[0] is not None and spreads[1] is not None:
        is_decided = decided(*spreads)
    return Verdict(best, runner_up, is_decided)


def fit_scaling(rows: Sequence[ScalingRow]) -> ScalingFit | None:
    """Fit S(B) = S_min + E_min/B with S_min, E_min >= 0 to the rows that reached the target.

    Residuals are relative (S spans decades, and a log-log chart shows relative error), which
    keeps the linear least squares: minimise sum((S_min + E_min/B)/S - 1)^2. Needs runs at two
    or more batch sizes that reached the target, else None.
    """
    reached = [r for r in rows if r.steps_to_target]
    if len({r.batch_size for r in reached}) < 2:
        return None
    steps = np.array([r.steps_to_target for r in reached], dtype=float)
    inverse_batch = np.array([1 / r.batch_size for r in reached])
    design = np.stack([1 / steps, inverse_batch / steps], axis=1)
    s_min, e_min = _nonnegative_least_squares(design, np.ones(len(steps)))
    predicted = np.log(s_min + e_min * inverse_batch)
    observed = np.log(steps)
    total = np.sum((observed - observed.mean()) ** 2)
    residual = np.sum((observed - predicted) ** 2)
    return ScalingFit(
        s_min=s_min,
        e_min=e_min,
        b_crit=e_min / s_min if s_min > 0 else None,
        r2=1 - residual / total if total > 0 else 1.0,
        batch_sizes=sorted({r.batch_size for r in reached}),
        unreached_batch_sizes=sorted({r.batch_size for r in rows if not r.steps_to_target}),
    )


def _nonnegative_least_squares(design: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """argmin |design @ c - target| with c >= 0, for two columns of positive entries.

    If the unconstrained optimum is infeasible the constrained one lies on an axis, where each
    single-column fit is positive: take the better of the two.
    """
    coefficients = np.linalg.lstsq(design, target, rcond=None)[0]
    if np.all(coefficients >= 0):
        return float(coefficients[0]), float(coefficients[1])
    candidates = []
    for column in range(2):
        c = np.zeros(2)
        x = design[:, column]
        c[column] = x @ target / (x @ x)
        candidates.append((float(np.sum((design @ c - target) ** 2)), c))
    best = min(candidates, key=lambda candidate: candidate[0])[1]
    return float(best[0]), float(best[1])


def perfect_scaling_line(rows: Sequence[ScalingRow]) -> list[tuple[int, float]]:
    """(batch size, steps) if doubling the batch always halved the steps, for every batch size.

    Anchored at the smallest batch that reached the target; empty if none did. On the samples
    chart the same reference is flat: samples = anchor's samples.
    """
    reached = [r for r in rows if r.steps_to_target]
    if not reached:
        return []
    anchor = min(reached, key=lambda r: r.batch_size)
    samples = anchor.batch_size * anchor.steps_to_target
    return [(b, samples / b) for b in sorted({r.batch_size for r in rows})]


def time_optimal_batch(rows: Sequence[ScalingRow]) -> BatchOptima:
    """The batch reaching the target in the least wall time, and the most accurate one.

    They trade off: bigger batches take less time per epoch but more epochs to the target.
    Ties go to the smaller batch.
    """
    timed = [r for r in rows if r.seconds_to_target is not None]
    scored = [r for r in rows if r.final_accuracy is not None]
    fastest = min(timed, key=lambda r: (r.seconds_to_target, r.batch_size), default=None)
    best = min(scored, key=lambda r: (-r.final_accuracy, r.batch_size), default=None)
    return BatchOptima(
        fastest_batch_size=fastest and fastest.batch_size,
        seconds_to_target=fastest and fastest.seconds_to_target,
        most_accurate_batch_size=best and best.batch_size,
        final_accuracy=best and best.final_accuracy,
    )
