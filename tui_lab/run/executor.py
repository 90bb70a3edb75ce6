"""Where runs are trained: the seam between the sweep (which plans runs and records sessions) and
whatever executes them — this process, a pool of local processes, or a cluster.

An executor takes tasks and yields their engine events, interleaved as they come. Every event
names its run (``run_index``), and every run it starts ends with exactly one ``RunEnded`` carrying
the final weights, so the sweep can write sessions and weights files the same way whichever
executor trained the run. The engine knows nothing of executors.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tui_lab.core.data import Data
from tui_lab.run.events import Event
from tui_lab.run.stacked import train_task
from tui_lab.schema import RunConfig


@dataclass
class SweepControl:
    """Thread-safe requests from a UI: stop the current run (and go on), or cancel the sweep."""

    stop_run: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)

    def is_set(self) -> bool:
        """The engine's stop signal: either request ends the current run."""
        return self.stop_run.is_set() or self.cancel.is_set()


@dataclass(frozen=True)
class RunTask:
    """What an executor trains in one go: one run, or several trained together (e.g. the seeds
    of one configuration as one stacked model). Each run keeps its own index in the sweep."""

    runs: tuple[tuple[int, RunConfig], ...]

    @classmethod
    def single(cls, run_index: int, config: RunConfig) -> RunTask:
        return cls(((run_index, config),))


class Executor(Protocol):
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

    def execute(
        self, tasks: Sequence[RunTask], data: Data, control: SweepControl
    ) -> Iterator[Event]:
        for task in tasks:
            if control.cancel.is_set():
                return
            control.stop_run.clear()
            yield from train_task(task.runs, data, control)
