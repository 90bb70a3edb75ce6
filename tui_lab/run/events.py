"""The stream of events a sweep emits: the one interface between training and its consumers.

The engine and the sweep yield these; the session recorder, the headless progress display and
the Textual app all consume the same stream. Events are small frozen dataclasses holding only
plain values and schema models, so they can also cross a process boundary (pickle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from tui_lab.schema import Environment, EpochRecord, RunConfig, Session, Status, TrajectorySketch
from tui_lab.schema.analysis import MemoryPeak, NoiseScalePoint


@dataclass(frozen=True)
class SweepStarted:
    preset_name: str
    runs: list[RunConfig]
    slots: int = 0  # tasks the executor trains at once (0: not known, e.g. an old plan)
    tasks: tuple[tuple[int, ...], ...] = ()  # run indices trained together, as planned


@dataclass(frozen=True)
class RunStarted:
    run_index: int
    config: RunConfig
    environment: Environment
    n_train: int
    n_val: int
    steps_per_epoch: int
    stacked: int = 1  # runs trained together with this one as one stacked model (itself too)


@dataclass(frozen=True)
class StepStats:
    """Training progress at a reporting interval (the only host/device sync inside an epoch)."""

    run_index: int
    epoch: int
    step: int
    epoch_fraction: float
    samples: int
    seconds: float
    loss: float
    lr: float
    samples_per_second: float
    noise_scale: tuple[NoiseScalePoint, ...] = ()  # measurements since the last report


@dataclass(frozen=True)
class EpochEnded:
    run_index: int
    record: EpochRecord
    noise_scale: tuple[NoiseScalePoint, ...] = ()  # measured after the epoch (at the target)


@dataclass(frozen=True)
class RunEnded:
    """The run is over. ``weights`` (a CPU state dict, for runs that completed or were stopped
    with finite weights) travel with the event so that whoever drives the sweep can save them,
    wherever the run was trained; the sweep drops them before passing the event on."""

    run_index: int
    status: Status
    message: str
    peak_memory: MemoryPeak | None = None
    trajectory: TrajectorySketch | None = None
    weights: dict[str, Tensor] | None = field(default=None, repr=False, compare=False)
    noise_note: str = ""  # why a due noise-scale measurement was skipped, in words


@dataclass(frozen=True)
class SessionSaved:
    """The run's session file has been written (after every epoch, and at the end)."""

    run_index: int
    path: Path
    session: Session
    final: bool


@dataclass(frozen=True)
class SweepEnded:
    cancelled: bool
    paths: list[Path]


Event = SweepStarted | RunStarted | StepStats | EpochEnded | RunEnded | SessionSaved | SweepEnded
