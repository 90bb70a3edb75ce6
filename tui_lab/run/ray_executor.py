"""Sweeps on a Ray cluster: every task is a Ray task whose events stream back as it trains.

Ray is optional (``pip install 'tui_lab[ray]'``) and imported only when a sweep asks for it.
Each task is a Ray *generator* task: every engine event it yields reaches this process at once,
so the live view is the one of a local sweep, and this process (the driver) writes every session
and weights file. The data set goes into Ray's object store once; each node fetches it from there.

Faults: a task whose worker or node dies is started again once, its unfinished runs from scratch
in the same session files; a second death, or an error outside the engine, ends those runs as
``failed`` with the reason while the sweep goes on. Closing the event stream (Ctrl+C) cancels
every task still queued or running.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any, TypeVar

from tui_lab.core.data import Data
from tui_lab.errors import BadInput
from tui_lab.run.engine import train_task
from tui_lab.run.events import Event, RunEnded, RunStarted
from tui_lab.run.executor import (
    RETRIES,
    RunTask,
    SweepControl,
    failed_runs,
    fault_due,
    retried_note,
)
from tui_lab.run.policy import cpu_threads_on_cluster, ray_gpu_share
from tui_lab.run.signals import Terminated
from tui_lab.schema import RayExecutorSettings, RunConfig

RAY_MISSING = "Ray is not installed here: pip install 'tui_lab[ray]'"
DEFAULT_PORTS = {"": 6379, "ray://": 10001}  # `ray start --head` and the Ray client
CONNECT_SECONDS = 5.0
POLL_SECONDS = 0.25  # how often a stop or cancel request from a UI is noticed
T = TypeVar("T")
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_started_here: list[bool] = []  # whether connect joined (or started) Ray for this process


def import_ray(source: str | None = None, field: str = "executor") -> ModuleType:
    """Ray itself, or BadInput saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise BadInput(RAY_MISSING, source=source, field=field) from error
    return ray


def connect(
    settings: RayExecutorSettings, *, source: str | None = None, field: str = "executor.address"
) -> ModuleType:
    """Join the cluster (or start a local Ray without an address); BadInput if it cannot be.

    The address is tried with a plain TCP connection first: Ray itself retries an unreachable
    cluster for minutes before giving up.
    """
    ray = import_ray(source, field)
    if ray.is_initialized():
        return ray
    address = settings.address
    if address and address != "auto":
        check_reachable(address, source=source, field=field)
    # ray.init makes SIGTERM exit on the spot (sys.exit(15), and a stack dump from its core
    # worker): bslab's own handlers come back, so a sweep on Ray ends like a local one.
    main = threading.current_thread() is threading.main_thread()
    handlers = {signum: signal.getsignal(signum) for signum in HANDLED_SIGNALS} if main else {}
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,  # worker output would tear the progress bars
            logging_level=logging.WARNING,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise BadInput(
            f"cannot start or join {where}: {error}", source=source, field=field
        ) from error
    finally:
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
    _started_here.append(True)
    return ray


def disconnect() -> None:
    """Leave the Ray that ``connect`` joined for this process; a local Ray it started ends
    with it (its processes would otherwise outlive bslab by a minute or more)."""
    ray = sys.modules.get("ray")
    if _started_here and ray is not None and ray.is_initialized():
        ray.shutdown()
    _started_here.clear()


def check_reachable(address: str, *, source: str | None, field: str) -> None:
    """BadInput unless something listens at ``[ray://]HOST[:PORT]``."""
    scheme = "ray://" if address.startswith("ray://") else ""
    host, _, port = address.removeprefix(scheme).rpartition(":")
    if not host or not port.isdigit():
        host, port = address.removeprefix(scheme), str(DEFAULT_PORTS[scheme])
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS):
            pass
    except OSError as error:
        raise BadInput(
            f"the Ray cluster at {host}:{port} cannot be reached ({error}); start it with "
            "`ray start --head` and give the address it prints",
            source=source,
            field=field,
        ) from error


def cluster_device(ray: ModuleType, spec: str, *, source: str | None, field: str) -> str:
    """The device runs use on the cluster: a GPU if asked (or ``auto``) and the cluster has one.

    Ray shows each task only the GPU it was given, so every GPU run trains on ``cuda:0``.
    """
    gpus = ray.cluster_resources().get("GPU", 0)
    spec = spec.strip().lower()
    if spec == "cpu" or (spec == "auto" and not gpus):
        return "cpu"
    if spec == "auto" or (spec.startswith("cuda") and gpus):
        return "cuda:0"
    available = "cpu, cuda, auto" if gpus else "cpu, auto"
    raise BadInput(
        f"device {spec!r} is not available on the Ray cluster (available: {available})",
        source=source,
        field=field,
    )


def task_resources(config: RunConfig, settings: RayExecutorSettings) -> dict[str, float]:
    """What a run asks Ray for: CPUs (as many as its torch threads) and a GPU or a share."""
    if config.device.startswith("cuda"):
        return {"num_cpus": settings.cpus_per_run or 1, "num_gpus": ray_gpu_share(config, settings)}
    return {"num_cpus": cpu_threads_on_cluster(config, settings), "num_gpus": 0}


def train_on_node(task: RunTask, data: Data) -> Iterator[Event]:
    """On a Ray worker: train the task (as every executor does), naming this node in each run's
    environment."""
    import ray

    node = ray.util.get_node_ip_address()
    for event in train_task(task.runs, data):
        if isinstance(event, RunStarted):
            event = replace(event, environment=event.environment.updated(node=node))
        yield event
        if fault_due(event):  # tests only: die as the OOM killer would kill us
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Attempt:
    """One submission of a task, and what its runs have done so far."""

    task: RunTask
    retries_left: int
    retried_after: str = ""
    started: set[int] = field(default_factory=set)
    ended: set[int] = field(default_factory=set)

    def unfinished(self) -> tuple[tuple[int, RunConfig], ...]:
        return tuple((i, c) for i, c in self.task.runs if i not in self.ended)


class RayExecutor:
    """Trains every task as a Ray task on the cluster ``connect`` joined."""

    def __init__(self, settings: RayExecutorSettings):
        self.settings = settings

    def slots(self, runs: Sequence[RunConfig]) -> int:
        """Runs the cluster trains at once, judged by the first run's request."""
        if not runs:
            return 1
        have = import_ray().cluster_resources()
        asks = task_resources(self.on_cluster(runs[0]), self.settings)
        kind = "num_gpus" if asks["num_gpus"] else "num_cpus"
        return max(1, int(have.get("GPU" if asks["num_gpus"] else "CPU", 0) // asks[kind]))

    def execute(
        self, tasks: Sequence[RunTask], data: Data, control: SweepControl
    ) -> Iterator[Event]:
        ray = import_ray()
        remote = ray.remote(max_retries=0)(train_on_node)  # retried here, where the runs are known
        data_ref = ray.put(data)
        running: dict[Any, Attempt] = {}

        def submit(attempt: Attempt) -> None:
            task = RunTask(tuple((i, self.on_cluster(c)) for i, c in attempt.task.runs))
            resources = task_resources(task.runs[0][1], self.settings)
            generator = remote.options(**resources).remote(task, data_ref)
            running[generator] = replace(attempt, task=task)

        for task in tasks:
            submit(Attempt(task, RETRIES))
        try:
            while running:
                if control.cancel.is_set() or control.stop_run.is_set():
                    stop_all = control.cancel.is_set()
                    control.stop_run.clear()
                    yield from self.stop(ray, running, everything=stop_all)
                    if stop_all:
                        return
                ready, _ = interruptible(
                    ray.wait, list(running), num_returns=1, timeout=POLL_SECONDS
                )
                for generator in ready:
                    yield from self.next_events(ray, generator, running, submit, data)
        finally:
            for generator in running:
                ray.cancel(generator)

    def on_cluster(self, config: RunConfig) -> RunConfig:
        """The run as trained on the cluster: CPU runs use exactly the CPUs they asked for."""
        if config.device != "cpu":
            return config
        return config.updated(threads=cpu_threads_on_cluster(config, self.settings))

    def next_events(
        self,
        ray: ModuleType,
        generator: Any,
        running: dict[Any, Attempt],
        submit: Callable[[Attempt], None],
        data: Data,
    ) -> Iterator[Event]:
        """The generator's next event; on a fault, a retry or the failure of its unfinished runs."""
        attempt = running[generator]
        try:
            event = interruptible(lambda: ray.get(next(generator)))
        except StopIteration:
            del running[generator]
            return
        except ray.exceptions.RayTaskError as error:  # raised outside the engine: a retry fails too
            del running[generator]
            yield from failed_runs(
                attempt.unfinished(),
                attempt.started,
                data,
                f"on the Ray cluster: {describe(error)}",
            )
            return
        except ray.exceptions.RayError as error:  # the worker or its node died
            del running[generator]
            reason = describe(error)
            if attempt.retries_left > 0 and attempt.unfinished():
                task = RunTask(attempt.unfinished())
                submit(Attempt(task, attempt.retries_left - 1, reason, set(attempt.started)))
            else:
                yield from failed_runs(
                    attempt.unfinished(), attempt.started, data, f"on the Ray cluster: {reason}"
                )
            return
        if isinstance(event, RunStarted):
            attempt.started.add(event.run_index)
        elif isinstance(event, RunEnded):
            attempt.ended.add(event.run_index)
            if attempt.retried_after:
                event = retried_note(event, attempt.retried_after)
        yield event

    def stop(
        self, ray: ModuleType, running: dict[Any, Attempt], *, everything: bool
    ) -> Iterator[Event]:
        """Cancel the running tasks (and the queued ones too if ``everything``); their started
        runs end as interrupted."""
        for generator, attempt in list(running.items()):
            if not (everything or attempt.started - attempt.ended):
                continue  # still queued: a stop request is for the runs already training
            ray.cancel(generator)
            del running[generator]
            for run_index in sorted(attempt.started - attempt.ended):
                yield RunEnded(run_index, "interrupted", "stopped on the Ray cluster")


def interruptible(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call into Ray; Ctrl+C or a signal that lands inside its C++ code comes out as itself
    (Ray's Cython wrapper turns it into a SystemError, which would end bslab with exit 1)."""
    try:
        return call(*args, **kwargs)
    except SystemError as error:
        stop = error.__cause__ or error.__context__
        if isinstance(stop, (KeyboardInterrupt, Terminated)):
            raise stop from None
        raise


def describe(error: Exception) -> str:
    """The error's kind and first line (Ray appends log locations and tracebacks)."""
    cause = getattr(error, "cause", None) or error
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first}"
