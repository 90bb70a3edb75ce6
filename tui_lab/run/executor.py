"""Where runs are trained: the seam between the sweep (which plans runs and records sessions) and
whatever executes them — this process, a pool of local processes, or a cluster.

An executor takes tasks and yields their engine events, interleaved as they come. Every event
names its run (``run_index``), and every run it starts ends with exactly one ``RunEnded`` carrying
the final weights, so the sweep can write sessions and weights files the same way whichever
executor trained the run. The engine knows nothing of executors.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from tui_lab.core.data import Data
from tui_lab.core.devices import sweep_devices
from tui_lab.run.engine import environment, steps_per_epoch, train_task
from tui_lab.run.events import EpochEnded, Event, RunEnded, RunStarted
from tui_lab.schema import RunConfig

EVERY_RUN = -1  # a stop request for every running run
RETRIES = 1  # a task whose worker died is started again this many times
TEST_FAULTS_ENV = "BSLAB_TEST_FAULTS"  # tests only: a folder of worker-kill instructions


class SharedInt(Protocol):
    """An int that several threads or processes see: a ``multiprocessing.Value`` or a `Box`."""

    value: int


@dataclass
class Box:
    value: int = EVERY_RUN


@dataclass
class SweepControl:
    """Requests from a UI, safe across threads (and processes, given multiprocessing parts):
    stop one run or every running one (saved as interrupted; the sweep goes on), or cancel the
    sweep. Several runs may train at once, so a stop request names its run."""

    stop_run: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    stop_index: SharedInt = field(default_factory=Box)  # which run stop_run means

    def skip(self, run_index: int | None = None) -> None:
        """Stop one run (by index), or every running one (None)."""
        self.stop_index.value = EVERY_RUN if run_index is None else run_index
        self.stop_run.set()

    def stop_request(self) -> int | None:
        """The run a pending stop request names (EVERY_RUN: all), taking it; None if none."""
        if not self.stop_run.is_set():
            return None
        self.stop_run.clear()
        return self.stop_index.value


@dataclass
class TaskStop:
    """The engine's stop signal for the runs of one task trained in this process (a stop for
    any run of a stacked task stops the whole stack: its runs share every step)."""

    control: SweepControl
    run_indices: tuple[int, ...]
    stopped: bool = False

    def is_set(self) -> bool:
        request = self.control.stop_request()
        if request == EVERY_RUN or request in self.run_indices:
            self.stopped = True
        return self.stopped or self.control.cancel.is_set()


@dataclass(frozen=True)
class RunTask:
    """What an executor trains in one go: one run, or several trained together (e.g. the seeds
    of one configuration as one stacked model). Each run keeps its own index in the sweep."""

    runs: tuple[tuple[int, RunConfig], ...]

    @classmethod
    def single(cls, run_index: int, config: RunConfig) -> RunTask:
        return cls(((run_index, config),))


class Executor(Protocol):
    def slots(self, runs: Sequence[RunConfig]) -> int:
        """How many tasks it would train at once: what stacking is planned against."""
        ...

    def execute(
        self, tasks: Sequence[RunTask], data: Data, control: SweepControl
    ) -> Iterator[Event]:
        """Train every task, yielding the events of its runs as they come.

        Stops starting tasks once ``control.cancel`` is set. Closing the iterator early (Ctrl+C,
        a UI quitting) must stop whatever is still training; the sweep then records the runs
        that had started but not ended as interrupted.
        """
        ...


class InlineExecutor:
    """Run after run in this process: the default, and the reference the others must match."""

    def slots(self, runs: Sequence[RunConfig]) -> int:
        return 1

    def execute(
        self, tasks: Sequence[RunTask], data: Data, control: SweepControl
    ) -> Iterator[Event]:
        for task in tasks:
            if control.cancel.is_set():
                return
            control.stop_request()  # one made after the last run ended is stale
            runs = tuple((i, c.updated(device=sweep_devices(c.device)[0])) for i, c in task.runs)
            stop = TaskStop(control, tuple(i for i, _ in runs))
            yield from train_task(runs, data, stop)


def failed_runs(
    runs: Sequence[tuple[int, RunConfig]], started: set[int], data: Data, reason: str
) -> Iterator[Event]:
    """End these runs as failed, starting those that never started (so that every run of the
    sweep gets a session saying why)."""
    for run_index, config in runs:
        if run_index not in started:
            yield RunStarted(
                run_index,
                config,
                environment(config.device),
                data.n_train,
                len(data.val_y),
                steps_per_epoch(data.n_train, config.batch_size),
            )
        yield RunEnded(run_index, "failed", reason)


def retried_note(event: RunEnded, reason: str) -> RunEnded:
    """The run's end, saying that it was started again after its worker died."""
    note = f"retried once after: {reason}"
    return replace(event, message="; ".join(filter(None, [event.message, note])))


def fault_due(event: Event) -> bool:
    """Tests only: whether this worker should die now, as the kernel's OOM killer would kill
    it: after a run's first epoch, if ``$BSLAB_TEST_FAULTS/kill-run<N>`` holds ``once`` (the
    file is removed, so the retry lives) or ``always``."""
    folder = os.environ.get(TEST_FAULTS_ENV)
    if not folder or not isinstance(event, EpochEnded) or event.record.epoch != 1:
        return False
    flag = Path(folder) / f"kill-run{event.run_index}"
    try:
        mode = flag.read_text().strip()
    except FileNotFoundError:
        return False
    if mode == "once":
        flag.unlink(missing_ok=True)
    return True
