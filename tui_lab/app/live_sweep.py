"""What the Train screen knows about a sweep in progress, built from its event stream alone.

Kept free of widgets so that it can be tested without a terminal, and so that the screen can
apply events as they arrive and redraw only on its own (throttled) schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def noise_points(self) -> list[NoiseScalePoint]:
        """The measurements as they arrive, or the saved ones for a run seen only saved."""
        if self.noise or self.session is None:
            return self.noise
        return self.session.noise_scale

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
    current: int | None = None  # the latest run started that still runs (runs may overlap)
    ended: bool = False
    cancelled: bool = False
    failure: str | None = None

    def apply(self, event: Event) -> None:
        if isinstance(event, SweepStarted):
            self.preset_name = event.preset_name
            self.runs = [RunState(config) for config in event.runs]
        elif isinstance(event, RunStarted):
            self.current = event.run_index
            run = self.runs[event.run_index]
            run.status = "running"
            run.samples_total = event.config.epochs * event.n_train
            run.n_train = event.n_train
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
                self.current = next(reversed(self.running_indices()), None)
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
