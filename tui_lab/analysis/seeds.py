"""Runs that differ only in seed, taken together: mean ± sd, median and range, and the test that
says whether two configurations really differ.

The rule for verdicts: a difference is *decided* when Welch's t-test (unequal variances, two
sided) gives p < 0.05 between the two configurations' per-seed values. With one seed on either
side nothing can be tested, and the verdict says it comes from one seed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tui_lab.schema.session import Session
from tui_lab.schema.train import RunConfig

SIGNIFICANCE = 0.05  # Welch's t-test, two-sided: the verdicts' "decided" rule


@dataclass(frozen=True)
class Spread:
    """One measure over the seeds of a configuration (only the seeds that have a value)."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Spread | None:
        """The spread of the values given (None ones left out); None if there are none."""
        kept = tuple(float(v) for v in values if v is not None)
        return cls(kept) if kept else None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def sd(self) -> float:
        """Sample standard deviation (n - 1); 0 for a single seed."""
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def mean_text(self, spec: str) -> str:
        """``98.4±0.1%`` style (``spec`` formats both); just the value for one seed."""
        if self.n == 1:
            return format(self.mean, spec)
        mean, sd = format(self.mean, spec), format(self.sd, spec)
        unit = "%" if spec.endswith("%") else ""
        return f"{mean.removesuffix(unit)}±{sd}"

    def median_text(self, spec: str = "d") -> str:
        """``5 (4–7)``: the median and the range; just the value when all seeds agree."""

        def fmt(value: float) -> str:
            return format(round(value) if spec.endswith("d") else value, spec)

        if self.low == self.high:
            return fmt(self.median)
        return f"{fmt(self.median)} ({fmt(self.low)}–{fmt(self.high)})"


def welch_p_value(a: Spread, b: Spread) -> float | None:
    """Two-sided p of Welch's t-test for equal means; None when a side has one seed.

    Both sides without any spread: 0 if the means differ (a certain difference), else 1.
    """
    if a.n < 2 or b.n < 2:
        return None
    va, vb = a.sd**2 / a.n, b.sd**2 / b.n
    if va + vb == 0:
        return 0.0 if a.mean != b.mean else 1.0
    t = (a.mean - b.mean) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    from scipy.stats import t as student_t

    return float(2 * student_t.sf(abs(t), dof))


def decided(a: Spread, b: Spread) -> bool | None:
    """Whether a and b differ by the verdicts' rule; None when it cannot be tested (one seed)."""
    p = welch_p_value(a, b)
    return None if p is None else p < SIGNIFICANCE


def median_or_none(values: Sequence[float | None]) -> float | None:
    """The median over all seeds, counting a missing value (target never reached) as infinite:
    None when at least half the seeds never got there (Shallue et al. take medians so)."""
    if not values:
        return None
    middle = statistics.median(math.inf if v is None else v for v in values)
    return None if math.isinf(middle) else middle


def group_key(session: Session) -> str:
    """What ties a run to its siblings of other seeds: see ``config_group_key``."""
    return config_group_key(session.config)


def config_group_key(cfg: RunConfig) -> str:
    """The group id the sweep gave a run, or (older sessions) its whole configuration but the
    seed; from the config alone, for runs not saved yet (the app's live sweep)."""
    if cfg.group_id is not None:
        return cfg.group_id
    return cfg.model_dump_json(exclude={"seed", "device", "threads"})


@dataclass(frozen=True)
class SeedGroup:
    """The sessions of one configuration, one per seed, and their statistics."""

    sessions: list[Session]

    @property
    def config(self):
        return self.sessions[0].config

    @property
    def n(self) -> int:
        return len(self.sessions)

    def _summary_values(self, name: str) -> list[float | None]:
        return [getattr(s.summary, name) if s.summary else None for s in self.sessions]

    def spread(self, name: str) -> Spread | None:
        """A Summary field over the seeds that have it: ``spread("final_accuracy")``."""
        return Spread.of(self._summary_values(name))

    @property
    def reached(self) -> int:
        """How many seeds reached the target accuracy."""
        return sum(v is not None for v in self._summary_values("steps_to_target"))

    def median_to_target(self, name: str = "steps_to_target") -> float | None:
        """Median over all seeds of steps (or epochs, samples) to target; see median_or_none."""
        return median_or_none(self._summary_values(name))

    @property
    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for session in self.sessions:
            counts[session.status] = counts.get(session.status, 0) + 1
        return counts


def seed_groups(sessions: Iterable[Session]) -> list[SeedGroup]:
    """Sessions grouped by configuration, in the order each group first appears; seeds sorted."""
    grouped: dict[str, list[Session]] = {}
    for session in sessions:
        grouped.setdefault(group_key(session), []).append(session)
    return [SeedGroup(sorted(m, key=lambda s: s.config.seed)) for m in grouped.values()]
