"""Runs a sweep off the UI thread and hands its events to a Textual node as messages.

Two ways to run it, behind one interface:

- ``process`` (default): the sweep trains in a child process (spawned, so no thread of the app
  is forked) and sends batches of events over a queue; a Textual thread worker reads the queue
  and posts them. Training never competes with the UI for the GIL.
- ``thread``: the sweep trains in the Textual thread worker itself. No start-up cost, but the
  training loop and the UI share the GIL.

Events are posted in batches (at most ~10 a second, plus at once for the rare events that change
what the screen shows), so the UI does a bounded amount of work however fast training goes.
``benchmarks/app_overhead.py`` measures both modes.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from textual.message import Message
from textual.message_pump import MessagePump
from textual.worker import Worker, get_current_worker

from tui_lab.errors import EXIT_FAILED, BadInput, StorageFault
from tui_lab.run.events import Event, StepStats
from tui_lab.run.executor import EVERY_RUN, SweepControl
from tui_lab.run.signals import on_termination, skip_final_collection
from tui_lab.run.sweep import prepare_sweep, run_sweep
from tui_lab.schema import TrainPreset

WorkerMode = Literal["process", "thread"]
DEFAULT_MODE: WorkerMode = "process"
FLUSH_SECONDS = 0.1
POLL_SECONDS = 0.05
CHILD_EXIT_SECONDS = 30.0


class SweepEvents(Message):
    """A batch of sweep events, in order."""

    def __init__(self, events: list[Event]) -> None:
        super().__init__()
        self.events = events


class SweepFailed(Message):
    """The sweep could not start or crashed; ``message`` is for the user."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class SweepFinished(Message):
    """The worker is done (after the last event, or after a failure)."""


@dataclass(frozen=True)
class SweepRequest:
    """Everything needed to prepare a sweep; plain values so it can cross a process boundary."""

    preset: TrainPreset
    out_dir: Path
    device: str | None = None
    data_dir: Path | None = None
    source: str | None = None


def batched(events: Iterator[Event], seconds: float = FLUSH_SECONDS) -> Iterator[list[Event]]:
    """Group events: StepStats wait up to ``seconds`` for company, any other goes out at once."""
    batch: list[Event] = []
    last_flush = time.monotonic()
    for event in events:
        batch.append(event)
        now = time.monotonic()
        if not isinstance(event, StepStats) or now - last_flush >= seconds:
            yield batch
            batch, last_flush = [], now
    if batch:
        yield batch


def sweep_batches(request: SweepRequest, control: SweepControl) -> Iterator[list[Event]]:
    prepared = prepare_sweep(
        request.preset,
        out_dir=request.out_dir,
        device=request.device,
        data_dir=request.data_dir,
        source=request.source,
    )
    yield from batched(run_sweep(prepared, control))


def describe_failure(error: BaseException) -> str:
    if isinstance(error, BadInput):
        return error.describe()
    if isinstance(error, StorageFault):
        return f"{error.describe()}: the sweep stopped (every later run would fail to save)"
    return "".join(traceback.format_exception_only(type(error), error)).strip()


def _child_main(request: SweepRequest, out: mp.Queue, stop_run, cancel, stop_index) -> None:  # type: ignore[no-untyped-def]
    """The training process: sends ("events", batch)..., then ("failed", text) or ("done",)."""
    silence_stdio()  # it shares the app's terminal: a stray warning would scribble on the screen
    skip_final_collection()  # the app waits for this process to end
    control = SweepControl(stop_run=stop_run, cancel=cancel, stop_index=stop_index)
    # A hang-up or a kill of the whole process group reaches this process too: end like the app.
    # (From a thread: the handler may interrupt this thread while it holds the event's lock.)
    on_termination(lambda signum: threading.Thread(target=cancel.set, daemon=True).start())
    end_with_parent(cancel, out)
    try:
        for batch in sweep_batches(request, control):
            out.put(("events", batch))
    except BaseException as error:  # the parent must hear about every way this can end
        out.put(("failed", describe_failure(error)))
    else:
        out.put(("done",))


def end_with_parent(cancel, out: mp.Queue) -> None:  # type: ignore[no-untyped-def]
    """Never outlive the app: when it is gone (even by ``kill -9``), save the run as interrupted
    and end; if the run cannot stop within CHILD_EXIT_SECONDS, end anyway (it reads back as
    stopped)."""
    parent = mp.parent_process()
    assert parent is not None, "only for the training process"

    def watch() -> None:
        parent.join()  # returns when the parent's end of a pipe closes: it has died
        out.cancel_join_thread()  # nobody reads the queue any more: do not wait to flush it
        cancel.set()
        time.sleep(CHILD_EXIT_SECONDS)
        os._exit(EXIT_FAILED)

    threading.Thread(target=watch, name="bslab-parent-watch", daemon=True).start()


def silence_stdio() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno() if sys.stdout else 1)
    os.dup2(devnull, sys.stderr.fileno() if sys.stderr else 2)


@contextlib.contextmanager
def real_stderr() -> Iterator[None]:
    """multiprocessing hands sys.stderr's file descriptor to its helper process, and Textual
    replaces sys.stderr with a capture that has none: lend it /dev/null meanwhile."""
    saved = sys.stderr
    with open(os.devnull, "w") as devnull:
        sys.stderr = devnull
        try:
            yield
        finally:
            sys.stderr = saved


class SweepRunner:
    """One sweep in the background: start it, skip the current run, cancel it, wait for it."""

    def __init__(self, target: MessagePump, request: SweepRequest, mode: WorkerMode = DEFAULT_MODE):
        self.target = target
        self.request = request
        self.mode = mode
        self._mp = mp.get_context("spawn")
        if mode == "process":
            with real_stderr():
                stop_run, cancel = self._mp.Event(), self._mp.Event()
                stop_index = self._mp.Value("i", EVERY_RUN)
            self.control = SweepControl(stop_run=stop_run, cancel=cancel, stop_index=stop_index)  # type: ignore[arg-type]
        else:
            self.control = SweepControl()
        self.worker: Worker[None] | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None and not self.worker.is_finished

    def start(self) -> Worker[None]:
        drive = self._drive_process if self.mode == "process" else self._drive_thread
        self.worker = self.target.run_worker(
            drive, name="sweep", group="sweep", thread=True, exit_on_error=False
        )
        return self.worker

    def skip_run(self, run_index: int | None = None) -> None:
        """End a run (saved as interrupted; None: every running one); the sweep goes on."""
        self.control.skip(run_index)

    def cancel(self) -> None:
        """End the current run (saved as interrupted) and start no more."""
        self.control.cancel.set()

    async def wait(self) -> None:
        """Until the worker is done, which after cancel() is one training step away."""
        if self.worker is not None:
            await self.worker.wait()

    def _post(self, batch: list[Event]) -> None:
        self.target.post_message(SweepEvents(batch))

    def _drive_thread(self) -> None:
        worker = get_current_worker()
        try:
            for batch in sweep_batches(self.request, self.control):
                self._post(batch)
                if worker.is_cancelled:  # the app is closing: let the engine stop and save
                    self.cancel()
        except Exception as error:
            self.target.post_message(SweepFailed(describe_failure(error)))
        self.target.post_message(SweepFinished())

    def _drive_process(self) -> None:
        worker = get_current_worker()
        with real_stderr():
            events: mp.Queue = self._mp.Queue()
            child = self._mp.Process(
                target=_child_main,
                args=(
                    self.request,
                    events,
                    self.control.stop_run,
                    self.control.cancel,
                    self.control.stop_index,
                ),
                name="bslab-sweep",
                daemon=False,  # it starts the sweep's own worker processes; joined below
            )
            child.start()
        try:
            self._relay(events, child, worker)
        finally:
            child.join(CHILD_EXIT_SECONDS)
            if child.is_alive():
                child.terminate()
            self.target.post_message(SweepFinished())

    def _relay(self, events: mp.Queue, child, worker: Worker[None]) -> None:  # type: ignore[no-untyped-def]
        while True:
            if worker.is_cancelled:
                self.cancel()
            try:
                item = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not child.is_alive() and events.empty():
                    code = child.exitcode
                    self.target.post_message(SweepFailed(f"training process ended (exit {code})"))
                    return
                continue
            if item[0] == "events":
                self._post(item[1])
            elif item[0] == "failed":
                self.target.post_message(SweepFailed(item[1]))
                return
            else:
                return
