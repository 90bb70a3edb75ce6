"""Several tasks (a run, or a stack of seeds) at once on this machine, each in its own process.

Small-batch steps are bound by per-step overhead, not arithmetic, so one run leaves most of the
machine idle: two single-thread runs on two cores give about 1.9x the samples/s of one, and
several small-batch runs share a GPU the same way. The pool fills the machine:

- on the cpu, the threads of the runs at once never exceed the cores. Small-batch runs take one
  thread; a large-batch run takes the cores no waiting run could use (two single-thread runs
  give more samples/s than one run on two threads), so it gets several threads only towards
  the end of a sweep. A preset's ``threads`` is kept as asked (and the run waits for its cores):
  CPU losses depend on the thread count at floating-point level, so a pinned count makes a run
  give the same losses sequential or concurrent. Each session records the threads it used;
- on a GPU, up to policy.GPU_SHARE small-batch runs share it, a large-batch run has it alone; with
  device ``cuda`` the runs spread over every visible GPU;
- the longest runs start first, so the sweep ends soon after its longest run.

Workers are spawned once and load the sweep's data split once (the preset's seed decides it),
then train tasks one after another through the engine's ``train_task``; events come back
pickled by value over one queue. Workers ignore Ctrl+C: the parent stops them. A worker that
dies is never given another task; the runs it was training start again once on a fresh worker,
then fail with the reason (its pid and signal).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from tui_lab.core.data import Data, DataSpec
from tui_lab.core.devices import sweep_devices
from tui_lab.run.engine import steps_per_epoch, train_task
from tui_lab.run.events import Event, RunEnded, RunStarted
from tui_lab.run.executor import (
    EVERY_RUN,
    RETRIES,
    RunTask,
    SweepControl,
    failed_runs,
    fault_due,
    retried_note,
)
from tui_lab.run.policy import (
    GPU_LARGE_BATCH,
    GPU_SHARE,
    STEP_COST_SAMPLES,
    available_cores,
    preferred_threads,
    stacked_cost,
)
from tui_lab.run.signals import skip_final_collection
from tui_lab.schema import RunConfig

# A worker process with torch and a data set loaded (the audit: 4.2 GB for 8 LeNet workers).
WORKER_BYTES = 600 * 2**20
POLL_SECONDS = 0.05
JOIN_SECONDS = 5.0


def estimated_cost(task: RunTask, n_train: int) -> float:
    """A task's work in sample-equivalents: one run's samples plus a fixed cost per step, times
    what a stack of the task's runs costs against one of them."""
    config = task.runs[0][1]
    one = config.epochs * (
        n_train + STEP_COST_SAMPLES * steps_per_epoch(n_train, config.batch_size)
    )
    if len(task.runs) == 1:
        return one
    device = config.device.split(":")[0]
    return one * stacked_cost(device, config.model, config.batch_size, len(task.runs))


@dataclass(frozen=True)
class Need:
    """What a run occupies while it trains: CPU cores and, on a GPU, a share of it."""

    cores: int
    gpu_units: int


def need(config: RunConfig, cores: int) -> Need:
    """What one run would occupy on an idle machine (a stack of runs occupies as much)."""
    if config.device.startswith("cuda"):
        big = config.batch_size >= GPU_LARGE_BATCH
        return Need(1, GPU_SHARE if big else 1)
    return Need(min(preferred_threads(config), cores), 0)


def task_need(task: RunTask, cores: int) -> Need:
    needs = [need(config, cores) for _, config in task.runs]
    return Need(max(n.cores for n in needs), max(n.gpu_units for n in needs))


@dataclass
class Capacity:
    """The machine as a sweep may fill it, and what is taken right now."""

    total_cores: int
    gpus: dict[str, int]  # concrete device -> free units
    slots: int  # most runs at once
    running: int = 0
    cores: int = field(init=False)  # free now

    def __post_init__(self) -> None:
        self.cores = self.total_cores

    def place(self, config: RunConfig, wanted: Need, waiting: int = 0) -> tuple[str, Need] | None:
        """Where to start this (task's first) run now and what it gets, taking that share; None
        if it must wait. ``waiting``: other runs that could start after it; a CPU run whose
        threads are not pinned leaves one core for each of them while slots are free."""
        if self.running >= self.slots or self.cores < 1:
            return None
        if wanted.gpu_units:
            device = max(self.gpus, key=lambda d: self.gpus[d])  # the least busy GPU
            if self.gpus[device] < wanted.gpu_units or wanted.cores > self.cores:
                return None
            self.gpus[device] -= wanted.gpu_units
            granted = wanted
        elif config.threads:  # pinned: exactly that many, or wait
            if wanted.cores > self.cores:
                return None
            device, granted = config.device, wanted
        else:
            others = min(waiting, self.slots - self.running - 1)
            spare = max(1, self.cores - others)
            device, granted = config.device, Need(min(wanted.cores, spare), 0)
        self.cores -= granted.cores
        self.running += 1
        return device, granted

    def release(self, device: str, granted: Need) -> None:
        self.cores += granted.cores
        self.running -= 1
        if granted.gpu_units:
            self.gpus[device] += granted.gpu_units


def capacity(runs: Sequence[RunConfig], parallel: int | str) -> Capacity:
    """How many runs may train at once: ``parallel`` runs, or (auto) what fills the machine;
    never more than the machine holds (``machine_slots``: a slot per core or GPU share, and
    a worker's memory each), however many were asked for."""
    cores = available_cores()
    devices = sweep_devices(runs[0].device) if runs else []
    gpus = {d: GPU_SHARE for d in devices if d.startswith("cuda")}
    slots = machine_slots(runs)
    if parallel != "auto":
        slots = min(int(parallel), slots)
    return Capacity(cores, gpus, max(1, min(slots, len(runs))))


def machine_slots(runs: Sequence[RunConfig]) -> int:
    """The most runs this machine can train at once: one per core (per GPU share on a GPU),
    and no more worker processes than the available memory holds. More only slow every run
    down and can exhaust the memory (``--parallel 8`` on 2 cores: 4× the time, 4.2 GB)."""
    devices = sweep_devices(runs[0].device) if runs else []
    gpus = [d for d in devices if d.startswith("cuda")]
    compute = min(available_cores(), GPU_SHARE * len(gpus)) if gpus else available_cores()
    free = available_memory()
    return compute if free is None else max(1, min(compute, free // WORKER_BYTES))


def available_memory() -> int | None:
    """Bytes of memory new processes can have (Linux's MemAvailable); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def longest_first(tasks: Sequence[RunTask], n_train: int) -> list[RunTask]:
    return sorted(tasks, key=lambda t: -estimated_cost(t, n_train))


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    tasks: mp.Queue
    runs: set[int] = field(default_factory=set)  # of its task, not ended yet
    task: RunTask | None = None  # the task it trains, as planned (before placing)
    device: str = ""
    need: Need = field(default_factory=lambda: Need(0, 0))


class LocalProcesses:
    """An executor that trains up to `capacity` runs at once in worker processes."""

    def __init__(self, parallel: int | str = "auto") -> None:
        self.parallel = parallel
        self._mp = mp.get_context("spawn")  # fork would copy torch's threads and CUDA state
        self._data: Data | DataSpec | None = None
        self._started: set[int] = set()  # runs whose RunStarted came back
        self._retried: dict[int, str] = {}  # runs started again, and why

    def slots(self, runs: Sequence[RunConfig]) -> int:
        return capacity(runs, self.parallel).slots

    def execute(
        self, tasks: Sequence[RunTask], data: Data, control: SweepControl
    ) -> Iterator[Event]:
        room = capacity([config for t in tasks for _, config in t.runs], self.parallel)
        self._data = data.spec or data  # workers load the sweep's split again, or get a copy
        pending = longest_first(tasks, data.n_train)
        indices = [index for t in tasks for index, _ in t.runs]
        position = {index: i for i, index in enumerate(indices)}
        events: mp.Queue = self._mp.Queue()
        stops = self._mp.Array("b", len(indices), lock=False)
        cancel = self._mp.Event()
        workers: list[_Worker] = []
        self._started, self._retried = set(), {}
        try:
            while pending or any(w.runs for w in workers):
                self._forward_control(control, cancel, stops, position, workers, pending)
                self._start_what_fits(pending, room, workers, position, events, stops, cancel)
                try:
                    event = pickle.loads(events.get(timeout=POLL_SECONDS))
                except queue.Empty:  # what a dead worker sent has been read: reap it now
                    yield from self._reap_dead(workers, room, pending, data)
                    continue
                if isinstance(event, RunStarted):
                    self._started.add(event.run_index)
                elif isinstance(event, RunEnded):
                    self._free(event.run_index, workers, room)
                    if event.run_index in self._retried:
                        event = retried_note(event, self._retried[event.run_index])
                yield event
        finally:
            cancel.set()
            self._shut_down(workers, events)

    @staticmethod
    def _forward_control(control, cancel, stops, position, workers, pending) -> None:  # type: ignore[no-untyped-def]
        if control.cancel.is_set():
            cancel.set()
            pending.clear()
        request = control.stop_request()
        if request is None:
            return
        for worker in workers:
            for index in worker.runs:
                if request in (EVERY_RUN, index):
                    stops[position[index]] = 1

    def _start_what_fits(self, pending, room, workers, position, events, stops, cancel) -> None:  # type: ignore[no-untyped-def]
        """Start every waiting run that fits now, longest first (shorter ones fill the gaps)."""
        for task in list(pending):
            first = task.runs[0][1]
            placed = room.place(first, task_need(task, room.total_cores), len(pending) - 1)
            if placed is None:
                continue
            device, granted = placed
            worker = next((w for w in workers if not w.runs and w.process.is_alive()), None)
            if worker is None:
                worker = self._spawn(events, stops, cancel)
                workers.append(worker)
            pending.remove(task)
            worker.runs, worker.device, worker.need = {i for i, _ in task.runs}, device, granted
            worker.task = task
            # The threads are the pool's to give: the worker must not look at the load itself.
            threads = {} if device.startswith("cuda") else {"threads": granted.cores}
            runs = [
                (position[i], i, config.updated(device=device, **threads))
                for i, config in task.runs
            ]
            worker.tasks.put(runs)

    def _spawn(self, events, stops, cancel) -> _Worker:  # type: ignore[no-untyped-def]
        tasks: mp.Queue = self._mp.Queue()
        process = self._mp.Process(
            target=_worker_main,
            args=(tasks, events, stops, cancel, self._data),
            name="bslab-run",
            daemon=True,
        )
        process.start()
        return _Worker(process, tasks)

    @staticmethod
    def _free(run_index: int, workers: list[_Worker], room: Capacity) -> None:
        """A run ended; its worker is free once its task's last run has."""
        for worker in workers:
            if run_index in worker.runs:
                worker.runs.discard(run_index)
                if not worker.runs:
                    room.release(worker.device, worker.need)

    def _reap_dead(
        self, workers: list[_Worker], room: Capacity, pending: list[RunTask], data: Data
    ) -> Iterator[Event]:
        """A worker that died (killed, out of host memory) costs at most the runs it was
        training: they start again once on a fresh worker, and fail if that one dies too."""
        for worker in [w for w in workers if not w.process.is_alive()]:
            workers.remove(worker)  # never given another task
            if not worker.runs or worker.task is None:
                continue
            reason = death(worker.process)
            room.release(worker.device, worker.need)
            unfinished = tuple((i, c) for i, c in worker.task.runs if i in worker.runs)
            worker.runs.clear()
            if RETRIES and not any(i in self._retried for i, _ in unfinished):
                self._retried.update((i, reason) for i, _ in unfinished)
                pending.insert(0, RunTask(unfinished))
                continue
            first = self._retried.get(unfinished[0][0], "")
            why = f"{reason}; retried once after: {first}" if first else reason
            yield from failed_runs(unfinished, self._started, data, why)

    @staticmethod
    def _shut_down(workers: list[_Worker], events: mp.Queue) -> None:
        """Let the workers end (their runs stop at the next report), then terminate stragglers.

        A worker cannot exit while its last events sit unread in the pipe, so they are drained
        meanwhile; nothing is read after a terminate, which can cut a message in half.
        """
        for worker in workers:
            if worker.process.is_alive():
                worker.tasks.put(None)
        deadline = time.monotonic() + JOIN_SECONDS
        while time.monotonic() < deadline and any(w.process.is_alive() for w in workers):
            with contextlib.suppress(queue.Empty):
                events.get(timeout=POLL_SECONDS)
        for worker in workers:
            if worker.process.is_alive():
                worker.process.terminate()
            worker.process.join()


def death(process: mp.process.BaseProcess) -> str:
    """How a worker process ended, in words that name it."""
    code = process.exitcode
    if code is not None and code < 0:
        how = f"signal {-code}, {signal.Signals(-code).name}"
    else:
        how = f"exit code {code}"
    return f"worker process {process.pid} died ({how})"


class _SharedStop:
    """A worker's stop signal for its current task: a flag of any of its runs (a stack stops
    as a whole: its runs share every step), or the sweep's cancel."""

    def __init__(self, stops, slots: list[int], cancel) -> None:  # type: ignore[no-untyped-def]
        self.stops, self.slots, self.cancel = stops, slots, cancel

    def is_set(self) -> bool:
        return any(self.stops[slot] for slot in self.slots) or self.cancel.is_set()


def _worker_main(tasks: mp.Queue, events: mp.Queue, stops, cancel, data) -> None:  # type: ignore[no-untyped-def]
    # Ctrl+C, SIGTERM and SIGHUP reach the whole process group: the parent handles them and
    # stops its workers; a worker whose parent died (even by kill -9) ends too.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    skip_final_collection()  # the sweep waits for its workers to end
    parent = mp.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (parent.join(), os._exit(1)), daemon=True).start()
    # The sweep's own split: loaded again from how the parent loaded it (the preset's seed).
    data = data.load() if isinstance(data, DataSpec) else data
    while (task := tasks.get()) is not None:
        slots = [slot for slot, _, _ in task]
        runs = [(run_index, config) for _, run_index, config in task]
        try:
            for event in train_task(runs, data, _SharedStop(stops, slots, cancel)):
                events.put(pickle.dumps(event))
                if fault_due(event):  # tests only: die as the OOM killer would kill us,
                    events.close()  # once what was sent is in the pipe whole
                    events.join_thread()
                    os.kill(os.getpid(), signal.SIGKILL)
        except Exception as error:  # the parent checked the data: this is a bug
            for run_index, _ in runs:
                failed = RunEnded(run_index, "failed", f"{type(error).__name__}: {error}")
                events.put(pickle.dumps(failed))
