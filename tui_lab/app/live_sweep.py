"""What the Train screen knows about a sweep in progress, built from its event stream alone.

Kept free of widgets so that it can be tested without a terminal, and so that the screen can
apply events as they arrive and redraw only on its own (throttled) schedule.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from tui_lab.analysis.seeds import config_group_key
from tui_lab.run.estimate import (
    expected_epochs,
    finish_seconds,
    run_overhead,
    seconds_per_sample,
    stack_factor,
)
from tui_lab.run.events import (
    EpochEnded,
    Event,
    RunEnded,
    RunStarted,
    SessionSaved,
    StepStats,
    SweepEnded,
    SweepStarted,
)
from tui_lab.run.recorder import CurveBuffer
from tui_lab.schema import RunConfig, Session
from tui_lab.schema.analysis import MemoryPeak, NoiseScalePoint


@dataclass
class RunState:
    """One run of the sweep: 'pending' until it starts, then the session's status ('skipped' if
    the sweep was cancelled before it started)."""

    config: RunConfig
    status: str = "pending"
    message: str = ""
    session: Session | None = None
    curve: CurveBuffer | None = None
    epoch: int = 0
    samples: int = 0
    samples_total: int = 0
    samples_per_second: float | None = None
    loss: float | None = None
    accuracy: float | None = None
    noise: list[NoiseScalePoint] = field(default_factory=list)  # measured so far, live
    n_train: int = 0
    peak_memory: MemoryPeak | None = None
    stacked: int = 1  # runs trained together as one model with this one (itself too)
    mean_samples_per_second: float | None = None  # over the whole run, once it has ended

    @property
    def group(self) -> str:
        """The configuration this run is a seed of: its siblings share their speed."""
        return config_group_key(self.config)

    @property
    def overhead(self) -> float:
        """Wall time per training second: evaluation after each epoch is not in samples/s."""
        epochs = self.session.epochs if self.session else []
        train = sum(e.train_seconds for e in epochs)
        return (train + sum(e.eval_seconds for e in epochs)) / train if train > 0 else 1.0

    @property
    def seconds_per_sample(self) -> float | None:
        """Wall seconds a sample costs this run (evaluation included), once it has a speed."""
        speed = self.mean_samples_per_second or self.samples_per_second
        return self.overhead / speed if speed else None

    def noise_points(self) -> list[NoiseScalePoint]:
        """The measurements as they arrive, or the saved ones for a run seen only saved."""
        if self.noise or self.session is None:
            return self.noise
        return self.session.noise_scale

    @property
    def noise_note(self) -> str:
        """Why due noise-scale readings were skipped, in words (once the run has ended)."""
        return self.session.noise_scale_note if self.session else ""

    @property
    def noise_scale(self) -> NoiseScalePoint | None:
        """The latest measurement (with where it was taken: it is not current between them)."""
        points = self.noise_points()
        return points[-1] if points else None

    @property
    def fraction(self) -> float:
        if self.status not in ("pending", "running"):
            return 1.0
        return self.samples / self.samples_total if self.samples_total else 0.0


@dataclass
class LiveSweep:
    """The sweep's runs and their progress; ``apply`` every event in order."""

    preset_name: str = ""
    runs: list[RunState] = field(default_factory=list)
    # The run the progress line follows: the first in the sweep's order that still runs (runs
    # may overlap), so its bar is the one furthest along, not a run that has only just begun.
    current: int | None = None
    ended: bool = False
    cancelled: bool = False
    failure: str | None = None
    slots: float = 0.0  # tasks at once: as planned, or the most seen (a stack counts once)
    tasks: list[tuple[int, ...]] = field(default_factory=list)  # runs trained together

    def apply(self, event: Event) -> None:
        if isinstance(event, SweepStarted):
            self.preset_name = event.preset_name
            self.runs = [RunState(config) for config in event.runs]
            self.slots, self.tasks = float(event.slots), list(event.tasks)
        elif isinstance(event, RunStarted):
            run = self.runs[event.run_index]
            run.status = "running"
            run.samples_total = event.config.epochs * event.n_train
            run.n_train = event.n_train
            run.stacked = max(1, event.stacked)
            if self.current is None:
                self.current = event.run_index
            occupied = sum(1 / r.stacked for r in self.runs if r.status == "running")
            self.slots = max(self.slots, occupied)
        elif isinstance(event, StepStats):
            run = self.runs[event.run_index]
            run.samples, run.loss = event.samples, event.loss
            run.samples_per_second = event.samples_per_second
            run.epoch = event.epoch
            run.noise.extend(event.noise_scale)
            if run.curve is not None:
                run.curve.append(event)
        elif isinstance(event, EpochEnded):
            run = self.runs[event.run_index]
            run.accuracy = event.record.val_accuracy
            run.samples = event.record.samples_seen
            run.noise.extend(event.noise_scale)
        elif isinstance(event, RunEnded):
            run = self.runs[event.run_index]
            run.status, run.message = event.status, event.message
            run.peak_memory = event.peak_memory
            if self.current == event.run_index:
                self.current = next(iter(self.running_indices()), None)
        elif isinstance(event, SessionSaved):
            self._mirror(event)
        elif isinstance(event, SweepEnded):
            self.ended, self.cancelled, self.current = True, event.cancelled, None
            for run in self.runs:
                if run.status == "pending":  # cancelled before it started: it never will
                    run.status = "skipped"

    def _mirror(self, event: SessionSaved) -> None:
        """Take the saved session as the truth; StepStats extend its curve until the next save."""
        run = self.runs[event.run_index]
        session = event.session
        run.session = session
        run.n_train = session.n_train
        run.curve = CurveBuffer(session.curve, session.config.curve_points)
        if session.epochs:
            last = session.epochs[-1]
            run.epoch, run.accuracy, run.samples = last.epoch, last.val_accuracy, last.samples_seen
        if event.final:
            run.status, run.message = session.status, session.message
            run.peak_memory = session.peak_memory or run.peak_memory
            if session.summary is not None:
                run.mean_samples_per_second = session.summary.samples_per_second

    def running_indices(self) -> list[int]:
        return [i for i, run in enumerate(self.runs) if run.status == "running"]

    @property
    def running(self) -> RunState | None:
        return self.runs[self.current] if self.current is not None else None

    @property
    def fraction(self) -> float:
        """Share of the sweep's training samples done (runs that ended early count as done)."""
        return sum(run.fraction for run in self.runs) / len(self.runs) if self.runs else 0.0

    @property
    def finished_runs(self) -> int:
        return sum(run.status not in ("pending", "running") for run in self.runs)

    def sessions(self) -> list[Session]:
        return [run.session for run in self.runs if run.session is not None]

    def eta_seconds(self) -> float | None:
        """Wall seconds until the whole sweep is done, or None until some run has a speed.

        The executor's tasks (a run, or a stack of seeds) are played forward on its slots
        (``run.estimate``): a running task keeps its slot for its samples left at its measured
        speed, the tasks to come start longest first as slots free up, each at the seconds per
        sample of a sibling seed, else of the measured batch sizes (``seconds_per_sample``),
        times what stacking costs. A run that stops at the target is expected to train as many
        epochs as the finished runs like it did, growing as 1 + B/B_crit beyond their batch
        sizes (``expected_epochs``, with the sweep's measured critical batch size). Each task to
        come also pays what the latest finished runs took beyond training (``run_overhead``).
        """
        if self.ended or not self.runs:
            return None
        basis = self._measured_costs()
        if not basis:
            return None
        n_train = next((run.n_train for run in self.runs if run.n_train), 0)
        finished = [
            (run.config, len(run.session.epochs) if run.session else run.epoch)
            for run in self.runs
            if run.status == "completed"
        ]
        critical = self.critical_batch()
        overhead = run_overhead(self.sessions())  # each run to come pays it
        running, waiting = [], []
        for task in self.tasks or [(i,) for i in range(len(self.runs))]:
            left = [
                self._seconds_left(self.runs[i], len(task), basis, n_train, finished, critical)
                for i in task
                if self.runs[i].status in ("pending", "running")
            ]
            if left:
                started = any(self.runs[i].status == "running" for i in task)
                (running if started else waiting).append(max(left) + (not started) * overhead)
        return finish_seconds(running, waiting, max(1, round(self.slots)))

    def _seconds_left(
        self,
        run: RunState,
        replicas: int,
        basis: dict[str, list[tuple[int, float]]],
        n_train: int,
        finished: list[tuple[RunConfig, int]],
        critical_batch: float | None,
    ) -> float:
        """A run's wall seconds left: its expected samples left at its own speed, or at the
        speed its task will have."""
        epochs = max(expected_epochs(run.config, finished, critical_batch), run.epoch)
        left = max(0.0, epochs * (run.n_train or n_train) - run.samples)
        if run.seconds_per_sample:
            return left * run.seconds_per_sample
        return left * _interpolated_cost(run.config, basis) * stack_factor(run.config, replicas)

    def critical_batch(self) -> float | None:
        """The sweep's critical batch size so far: the median of each run's latest estimate
        (one noisy run does not move it), None before any."""
        latest = [run.noise_scale.b_simple for run in self.runs if run.noise_scale is not None]
        positive = [b for b in latest if b is not None and b > 0]
        return statistics.median(positive) if positive else None

    def _measured_costs(self) -> dict[str, list[tuple[int, float]]]:
        """(batch size, seconds per sample of the run trained alone) of every run with a speed,
        by configuration (a stacked run's speed is its stack's, per replica)."""
        costs: dict[str, list[tuple[int, float]]] = {}
        for run in self.runs:
            cost = run.seconds_per_sample
            if cost is not None and cost > 0 and run.samples > 0:  # a log needs a positive cost
                alone = cost / stack_factor(run.config, run.stacked)
                costs.setdefault(run.group, []).append((run.config.batch_size, alone))
        return costs


def _interpolated_cost(config: RunConfig, basis: dict[str, list[tuple[int, float]]]) -> float:
    """A run's seconds per sample alone before it has a speed: its sibling seeds' mean, else
    from the measured batch sizes' costs (``run.estimate.seconds_per_sample``)."""
    group = config_group_key(config)
    if group in basis:
        siblings = [cost for _, cost in basis[group]]
        return sum(siblings) / len(siblings)
    return seconds_per_sample(config.batch_size, [p for points in basis.values() for p in points])
