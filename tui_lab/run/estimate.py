"""How long a sweep, or what is left of it, will take: the executor's own plan (its slots, its
stacked tasks, the longest task first) played forward with measured seconds per sample.

Setup estimates a whole sweep before it starts from runs measured before on this machine; the
Train screen and ``bslab watch`` estimate what is left from the sweep's own runs. Both put the
tasks on the slots here, as the process pool starts them, and both say nothing rather than guess
where nothing comparable was measured.
"""

from __future__ import annotations

import heapq
import math
import socket
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tui_lab.run.policy import plan_tasks, stacked_cost
from tui_lab.schema import RunConfig, Session


def finish_seconds(running: Sequence[float], waiting: Sequence[float], slots: int) -> float:
    """When the last task ends: the running tasks keep their slots for the seconds they have
    left, and each waiting task starts, the longest first, on the first slot to free up."""
    idle = min(slots, len(running) + len(waiting)) - len(running)  # more slots never help
    free_at = [*running, *[0.0] * max(0, idle)] or [0.0]
    heapq.heapify(free_at)
    for seconds in sorted(waiting, reverse=True):
        heapq.heappush(free_at, heapq.heappop(free_at) + seconds)
    return max(free_at)


def stack_factor(config: RunConfig, replicas: int) -> float:
    """A task's wall time against one of its runs trained alone (policy's measured table)."""
    if replicas <= 1:
        return 1.0
    return stacked_cost(config.device.split(":")[0], str(config.model), config.batch_size, replicas)


def cost_key(config: RunConfig) -> str:
    """What a run's seconds per sample depend on besides its batch size."""
    return f"{config.dataset}|{config.model}|{config.device.split(':')[0]}|{config.threads}"


def _means(points: Sequence[tuple[float, float]]) -> dict[float, float]:
    """The mean y at each measured x."""
    by_x: dict[float, list[float]] = {}
    for px, py in points:
        by_x.setdefault(px, []).append(py)
    return {px: sum(ys) / len(ys) for px, ys in by_x.items()}


def log_interpolated(x: float, points: Sequence[tuple[float, float]]) -> float:
    """The mean y at x, interpolated in log-log between the measured x (flat beyond the ends)."""
    logs = sorted((math.log(px), math.log(py)) for px, py in _means(points).items())
    xs, ys = zip(*logs, strict=True)
    return math.exp(float(np.interp(math.log(x), xs, ys)))


def seconds_per_sample(batch: float, points: Sequence[tuple[float, float]]) -> float:
    """A run's wall seconds per sample at ``batch``, from measured (batch size, seconds per
    sample): interpolated in log-log between the measured batch sizes; beyond them, a step is
    taken to cost a fixed overhead plus a share per sample (t0 + c·B, fitted to the measured
    steps), so the per-sample cost keeps falling towards c instead of staying where the last
    measurement left it (which made a sweep of small batches first predict its large batches
    far too slow). Flat beyond the ends where the measurements cannot fix t0 ≥ 0 and c > 0."""
    means = _means(points)
    inside = min(means) <= batch <= max(means)
    if inside or len(means) < 2:
        return log_interpolated(batch, points)
    sizes = np.array(sorted(means))
    steps = np.array([means[b] * b for b in sizes])
    c, t0 = (float(v) for v in np.polyfit(sizes, steps, 1))
    end = float(sizes[0] if batch < sizes[0] else sizes[-1])
    if t0 < 0 or c <= 0:
        return means[end]
    return means[end] * ((t0 + c * batch) / batch) / ((t0 + c * end) / end)


def expected_epochs(
    config: RunConfig,
    finished: Sequence[tuple[RunConfig, int]],
    critical_batch: float | None = None,
) -> float:
    """The epochs a run will train: its budget, or, for a run that stops at the target, what
    the finished runs took: its sibling seeds', else at its batch size, else interpolated
    between the batch sizes. Beyond the batch sizes that finished, epochs to a target grow as
    1 + B/B_crit (McCandlish et al. 2018: steps S_min(1 + B_crit/B), each of B samples), with
    the sweep's measured critical batch size; flat without one. ``finished``: (config, epochs
    trained) of runs that completed."""
    budget = float(config.epochs)
    if not config.stop_at_target or not finished:
        return budget
    for same in (
        lambda c: c.group_id == config.group_id and c.group_id is not None,
        lambda c: c.batch_size == config.batch_size,
    ):
        epochs = [e for c, e in finished if same(c)]
        if epochs:
            return min(budget, sum(epochs) / len(epochs))
    points = [(float(c.batch_size), float(max(1, e))) for c, e in finished]
    batch = float(config.batch_size)
    epochs = log_interpolated(batch, points)
    sizes = _means(points)
    if critical_batch and critical_batch > 0 and not min(sizes) <= batch <= max(sizes):
        nearest = min(sizes, key=lambda b: abs(math.log(b / batch)))
        epochs *= (1 + batch / critical_batch) / (1 + nearest / critical_batch)
    return min(budget, epochs)


RECENT_RUNS = 8  # the runs whose overhead stands for the next (benchmarks/eta_accuracy.py)


def run_overhead(sessions: Sequence[Session]) -> float:
    """Wall seconds a run takes beyond its training and evaluation (starting, building the
    model, the noise probe, reporting, saving): the median over the ``RECENT_RUNS`` that
    finished last, 0 without any. On the digits preset it was most of a run's time (3 to 20 s
    beside 0.4 to 10 s of training), falling with the batch size and the machine's load, so
    the latest runs predict the next better than all of them (``benchmarks/eta_accuracy.py``:
    an estimate without it was 5× too short)."""
    finished = sorted(
        (s for s in sessions if s.status == "completed" and s.heartbeat is not None),
        key=lambda s: s.heartbeat,
    )
    extra = [
        (session.heartbeat - session.created).total_seconds()
        - sum(e.train_seconds + e.eval_seconds for e in session.epochs)
        for session in finished[-RECENT_RUNS:]
    ]
    return max(0.0, statistics.median(extra)) if extra else 0.0


@dataclass(frozen=True)
class SweepEstimate:
    """A sweep's wall time before it starts, and what it rests on (said with the figure)."""

    seconds: float
    basis: str
    upper_bound: bool  # runs that stop at the target will most likely end sooner


def _past_costs(sessions: Sequence[Session]) -> dict[str, list[tuple[float, float]]]:
    """(batch size, wall seconds per sample, evaluation included) of the runs this machine
    completed alone (not stacked), by what else their cost depends on."""
    host = socket.gethostname()
    costs: dict[str, list[tuple[float, float]]] = {}
    for session in sessions:
        samples = session.epochs[-1].samples_seen if session.epochs else 0
        seconds = sum(e.train_seconds + e.eval_seconds for e in session.epochs)
        if (
            session.status == "completed"
            and session.environment.host == host
            and session.environment.training_step != "stacked"
            and samples > 0
            and seconds > 0
        ):
            key = cost_key(session.config)
            costs.setdefault(key, []).append((float(session.config.batch_size), seconds / samples))
    return costs


def estimate_sweep(
    runs: Sequence[RunConfig], n_train: int, slots: int, sessions: Sequence[Session]
) -> SweepEstimate | None:
    """The sweep's wall time from past runs of the same data, model and device here, the
    tasks planned and put on ``slots`` as the executor will; None where none was measured."""
    costs = _past_costs(sessions)
    if not runs or not all(cost_key(c) in costs for c in runs):
        return None
    tasks = plan_tasks(runs, slots)
    overhead = run_overhead(
        [s for s in sessions if cost_key(s.config) in {cost_key(c) for c in runs}]
    )
    durations = []
    for task in tasks:
        config = runs[task[0]]
        cost = seconds_per_sample(config.batch_size, costs[cost_key(config)])
        training = config.epochs * n_train * cost * stack_factor(config, len(task))
        durations.append(overhead + training)
    keys = {cost_key(c) for c in runs}
    measured = sum(len(costs[key]) for key in keys)
    stacks = sum(len(task) > 1 for task in tasks)
    basis = f"from {measured} past run{'s' * (measured != 1)} here, {slots} at once" + (
        f", {stacks} stacked task{'s' * (stacks != 1)}" if stacks else ""
    )
    upper = any(c.stop_at_target for c in runs)
    return SweepEstimate(finish_seconds([], durations, slots), basis, upper)
