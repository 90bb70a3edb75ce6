"""The training engine: one task (a run, or several runs of one configuration trained as one
stacked model), top to bottom, as a stream of events. It knows nothing of any UI or executor:
every executor calls ``train_task`` and only decides where it runs.

The whole data set lives on the device; each epoch cuts batches from a fresh seeded permutation,
so there is no per-sample Python work. Losses are summed on the device and read (one host sync)
only a few times a second, when the stop signal is polled too. Non-finite losses end the run
as ``diverged``, an allocation failure as ``out_of_memory``; both are outcomes, not crashes.
"""

from __future__ import annotations

import math
import os
import platform
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from tui_lab import __version__
from tui_lab.analysis.memory import PeakMemory
from tui_lab.analysis.noise_scale import measure
from tui_lab.analysis.trajectory import TrajectoryRecorder, trajectory_sketch
from tui_lab.core.data import Data
from tui_lab.core.devices import device_name, is_out_of_memory, synchronize
from tui_lab.core.models import seeded_model
from tui_lab.core.optimizers import warmup_factor
from tui_lab.run.events import EpochEnded, Event, RunEnded, RunStarted, StepStats
from tui_lab.run.policy import available_cores, cpu_threads
from tui_lab.run.train_steps import StepKind, Steps, step_plan, train_steps
from tui_lab.schema import Environment, EpochRecord, RunConfig, Status
from tui_lab.schema.analysis import NoiseScalePoint
from tui_lab.schema.trajectory import TrajectorySettings, TrajectorySketch

REPORT_SECONDS = 0.25  # a few progress reports a second: smooth live charts, rare host syncs
# A probe's per-sample gradients against an evaluation's forward pass, per sample (LeNet-5 on
# one cpu thread: 6-9 times; a guess that errs high delays the first measurement, not the rest).
PER_SAMPLE_COST_VS_EVAL = 10.0


class StopSignal(Protocol):
    """Anything with ``is_set()``: a threading.Event, a multiprocessing.Event, ..."""

    def is_set(self) -> bool: ...


class NeverStop:
    def is_set(self) -> bool:
        return False


def environment(device: str, step: StepKind = "eager", why: str = "") -> Environment:
    return Environment(
        python=platform.python_version(),
        torch=torch.__version__,
        platform=f"{sys.platform}-{platform.machine()}",
        host=socket.gethostname(),
        device=device,
        device_name=device_name(device),
        threads=torch.get_num_threads(),
        bslab=__version__,
        cores=available_cores(),
        training_step=step,
        training_step_reason=why,
    )


def load_average() -> float | None:
    """The 1-minute load average, where the system keeps one."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return math.ceil(n_train / batch_size)


def report_due(since_last_report: float, last_step_of_epoch: bool) -> bool:
    """Report (and sync with the device) at the end of every epoch and every REPORT_SECONDS.

    Time-based rather than every n steps: a fixed step count either syncs a GPU every other
    step on short epochs (which halves its throughput) or leaves minutes between reports on long
    ones. Training itself does not depend on when reports happen.
    """
    return last_step_of_epoch or since_last_report >= REPORT_SECONDS


def reached_target(config: RunConfig, val_accuracy: float) -> bool:
    """Whether the run ends here because it reached the target and was asked to stop there."""
    return config.stop_at_target and val_accuracy >= config.target_accuracy


Ending = tuple[Status, str, int]  # how a run ended: status, message, optimizer steps taken


def train_task(
    runs: Sequence[tuple[int, RunConfig]], data: Data, stop: StopSignal | None = None
) -> Iterator[Event]:
    """Train one run, or several runs of one configuration as one stacked model, yielding each
    run's events (tagged with its index in the sweep); each run's last event is its RunEnded,
    with its final weights. A stop stops the whole task: a stack's runs share every step."""
    stop = stop or NeverStop()
    configs = [config for _, config in runs]
    first = configs[0]
    device = torch.device(first.device)
    n_train = data.n_train
    steps = steps_per_epoch(n_train, first.batch_size)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(first))
    kind, why = step_plan(configs)
    env = environment(first.device, kind, why)
    for index, config in runs:
        yield RunStarted(index, config, env, n_train, len(data.val_y), steps, stacked=len(runs))
    memory = PeakMemory(device)
    ended: dict[int, Ending] = {}
    stepper = None
    instruments: list[Instruments] = []
    try:
        memory.reset()
        data = data.to(device)
        models = [seeded_model(c.model, data, c.seed, device) for c in configs]
        stepper = train_steps(kind, models, configs, data.train_x, data.train_y)
        instruments = [Instruments.for_run(c, c.epochs * steps, n_train) for c in configs]
        yield from _epochs(runs, data, stepper, instruments, stop, ended)
    except Exception as error:
        status: Status = "out_of_memory" if is_out_of_memory(error) else "failed"
        for index, _ in runs:
            ended.setdefault(index, (status, f"{type(error).__name__}: {error}", 0))
        stepper = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
    peak = memory.read()
    for k, (index, _) in enumerate(runs):
        status, message, last_step = ended[index]
        model = stepper.replica(k) if stepper is not None else None
        sketch = None
        if model is not None and status == "completed":
            # A stopped run ends at once: the user is waiting (and a cut path says little).
            sketch = instruments[k].sketch(model, data, step=last_step)
        weights = None
        if model is not None:
            weights = {name: t.detach().cpu().clone() for name, t in model.state_dict().items()}
        noise = instruments[k].noise if instruments else None
        note = noise.skipped if noise is not None else ""
        yield RunEnded(index, status, message, peak, sketch, weights, noise_note=note)


def train_run(
    config: RunConfig, data: Data, *, run_index: int = 0, stop: StopSignal | None = None
) -> Iterator[Event]:
    """Train one run alone (a task of one)."""
    return train_task([(run_index, config)], data, stop)


@dataclass
class NoiseProbe:
    """When and on what the gradient noise scale is measured: a fresh random probe of the
    training set at the current weights, every so many samples seen, within a time budget."""

    probe_size: int
    every_samples: float
    time_share: float
    generator: torch.Generator
    next_due: float  # samples seen
    seconds: float = 0.0  # spent measuring so far
    last_cost: float = math.inf  # unknown until guessed from an evaluation, or measured
    reached: bool = False  # measured where the run reached its target
    taken: int = 0  # measurements so far
    skipped: str = ""  # why a due measurement was first skipped, in words (for the session)

    def guess_cost(self, eval_seconds: float, eval_samples: int) -> None:
        """Before the first measurement, guess its cost from an evaluation pass: per-sample
        gradients cost about PER_SAMPLE_COST_VS_EVAL times a forward pass, whatever the batch
        size trained with, so the first measurement keeps to the time share too."""
        if math.isinf(self.last_cost) and eval_samples:
            self.last_cost = PER_SAMPLE_COST_VS_EVAL * self.probe_size * eval_seconds / eval_samples

    def affordable(self, train_seconds: float, done: float) -> bool:
        """Whether one more measurement (costing what the last one did) fits the time share;
        a share of 1 measures whenever due. ``done``: the fraction of the run trained so far.
        The first time it does not fit, the reason is kept for the session."""
        if self.time_share >= 1 or self.seconds + self.last_cost <= self.time_share * train_seconds:
            return True
        if not self.skipped and math.isfinite(self.last_cost) and train_seconds > 0 and done > 0:
            share = self.last_cost / (train_seconds / done)
            self.skipped = (
                f"the probe would cost {share:.0%} of this run (noise_scale.time_share allows "
                f"{self.time_share:.0%}); raise `noise_scale.time_share`"
            )
        return False

    def after_epoch(
        self,
        model: nn.Module,
        data: Data,
        where: tuple[float, int, int, float],
        *,
        reached: bool,
        last: bool,
    ) -> tuple[NoiseScalePoint, ...]:
        """The measurements an epoch's end calls for, whatever the time budget: where the run
        first reached its target (McCandlish's B_crit belongs to a loss level), and at the run's
        last epoch if nothing was measured yet, so that every run has at least one reading."""
        at_target = reached and not self.reached
        self.reached = self.reached or reached
        if at_target or (last and not self.taken):
            return (self.measure(model, data, where, at_target=at_target),)
        return ()

    def measure(
        self, model: nn.Module, data: Data, where: tuple[float, int, int, float], at_target=False
    ) -> NoiseScalePoint:
        """Measure at the model's weights; ``where`` is (epoch, step, samples, seconds)."""
        device = data.train_x.device
        synchronize(device)  # the probe's time, not queued training work
        start = time.perf_counter()
        keep = torch.randperm(data.n_train, generator=self.generator)[: self.probe_size]
        keep = keep.to(device)
        x, y = data.train_x[keep], data.train_y[keep]
        estimate = measure(model, F.cross_entropy, x, y, data.n_train)
        self.last_cost = time.perf_counter() - start
        self.seconds += self.last_cost
        self.taken += 1
        epoch, step, samples, seconds = where
        self.next_due = samples + self.every_samples
        low, high = estimate.interval()
        return NoiseScalePoint(
            epoch=epoch,
            step=step,
            samples=samples,
            seconds=seconds,
            b_simple=estimate.b_simple,
            b_low=low,
            b_high=high if math.isfinite(high) else None,
            grad_sq=estimate.grad_sq,
            grad_sq_se=estimate.grad_sq_se,
            trace_sigma=estimate.trace_sigma,
            trace_sigma_se=estimate.trace_sigma_se,
            probe_size=estimate.probe_size,
            at_target=at_target,
        )


@dataclass
class Instruments:
    """The optional measurements of a run: gradient noise scale and the weight trajectory."""

    noise: NoiseProbe | None
    trajectory: TrajectoryRecorder | None
    trajectory_settings: TrajectorySettings

    @classmethod
    def for_run(cls, config: RunConfig, total_steps: int, n_train: int) -> Instruments:
        settings = config.noise_scale
        traj = config.trajectory
        return cls(
            noise=NoiseProbe(
                probe_size=min(settings.probe_size, n_train),
                every_samples=n_train / settings.per_epoch,
                next_due=n_train / settings.per_epoch,
                time_share=settings.time_share,
                generator=torch.Generator().manual_seed(config.seed),
            )
            if settings.enabled
            else None,
            trajectory=TrajectoryRecorder(
                traj.max_snapshots,
                # Spread the snapshots over the planned run from the start: each one is a copy
                # to the host (a sync on a GPU), so recording every step at first would cost.
                interval=max(1, total_steps // traj.max_snapshots),
            )
            if traj.enabled
            else None,
            trajectory_settings=traj,
        )

    def sketch(self, model: nn.Module, data: Data, step: int) -> TrajectorySketch | None:
        """The path on its top-2 PCA plane over a loss grid (None if it cannot be drawn)."""
        if self.trajectory is None or not self.trajectory.steps:
            return None
        settings = self.trajectory_settings
        x, y = data.train_sample(settings.eval_samples)
        try:
            return trajectory_sketch(
                model,
                self.trajectory,
                step,
                x,
                y,
                resolution=settings.grid_resolution,
            )
        except ValueError:  # non-finite weights: a diverged run has no sketch
            return None


def _epochs(
    runs: Sequence[tuple[int, RunConfig]],
    data: Data,
    stepper: Steps,
    instruments: list[Instruments],
    stop: StopSignal,
    ended: dict[int, Ending],
) -> Iterator[Event]:
    """The training loop proper, for the task's K runs (replicas; K is 1 for a run alone);
    fills ``ended`` with how each run ended. A replica that ends early (diverged, at its
    target) goes on stepping with its siblings, unreported.

    Per step it only decides what kind of step to take: anything else (reading the losses,
    polling the stop signal, timing) waits for a report, a few times a second.
    """
    device = data.train_x.device
    first = runs[0][1]
    batch, n_train, epochs = first.batch_size, data.n_train, first.epochs
    steps = steps_per_epoch(n_train, batch)
    shufflers = [torch.Generator().manual_seed(config.seed) for _, config in runs]
    warming_up = first.lr_scaling.warmup_epochs > 0
    factor = 1.0  # of each run's lr, while warming up
    step = 0
    train_seconds = 0.0
    measured: list[list[NoiseScalePoint]] = [[] for _ in runs]  # not yet reported

    def live() -> list[tuple[int, int, RunConfig, Instruments]]:
        """The replicas still reported on: (replica, run index, config, instruments)."""
        return [
            (k, index, config, instruments[k])
            for k, (index, config) in enumerate(runs)
            if index not in ended
        ]

    for epoch in range(1, epochs + 1):
        stepper.begin_epoch(torch.stack([torch.randperm(n_train, generator=g) for g in shufflers]))
        epoch_loss = [0.0] * len(runs)  # the device's running totals at the last report
        interval_steps = 0
        interval_start = time.perf_counter()
        epoch_start = interval_start
        cpu_start = time.process_time()
        for i in range(steps):
            samples = (epoch - 1) * n_train + i * batch
            for k, _, _, tools in live():
                noise, trajectory = tools.noise, tools.trajectory
                if noise is not None and samples >= noise.next_due:
                    seconds = train_seconds + time.perf_counter() - epoch_start
                    if noise.affordable(seconds, samples / (epochs * n_train)):
                        where = (epoch - 1 + i / steps, step, samples, seconds)
                        measured[k].append(noise.measure(stepper.replica(k), data, where))
                        # Measuring is not training: keep it out of the epoch's and interval's time.
                        epoch_start += noise.last_cost
                        interval_start += noise.last_cost
                if trajectory is not None and trajectory.wants(step):
                    trajectory.record_flat(stepper.flat(k), step)
            if warming_up:
                factor = warmup_factor(first.lr_scaling, step, steps)
                for group in stepper.optimizer.param_groups:
                    group["lr"] = first.lr * factor
            stepper.step(i)
            interval_steps += 1
            step += 1
            if report_due(time.perf_counter() - interval_start, i == steps - 1):
                # The interval's one host sync. The totals run over the epoch, so the epoch's
                # losses do not depend on when reports happened to fall.
                totals = stepper.loss_sum.tolist()
                now, cpu_now = time.perf_counter(), time.process_time()
                seconds = train_seconds + (now - epoch_start)
                samples = (epoch - 1) * n_train + min((i + 1) * batch, n_train)
                speed = interval_steps * batch / max(now - interval_start, 1e-9)
                for k, index, config, _ in live():
                    mean_loss = (totals[k] - epoch_loss[k]) / interval_steps
                    yield StepStats(
                        index,
                        epoch,
                        step,
                        (i + 1) / steps,
                        samples,
                        seconds,
                        mean_loss,
                        config.lr * factor,
                        speed,
                        tuple(measured[k]),
                    )
                    measured[k].clear()
                    if not math.isfinite(mean_loss):
                        message = f"training loss became {mean_loss} at step {step}"
                        ended[index] = ("diverged", message, step)
                epoch_loss = totals
                if not live():
                    return
                interval_steps = 0
                interval_start = time.perf_counter()  # the consumer's time is not training time
                epoch_start += interval_start - now
                cpu_start += time.process_time() - cpu_now
                if stop.is_set():
                    for _, index, _, _ in live():
                        message = f"stopped during epoch {epoch} at step {step}"
                        ended[index] = ("interrupted", message, step)
                    return
        synchronize(device)
        epoch_seconds = time.perf_counter() - epoch_start
        cpu_seconds = time.process_time() - cpu_start
        train_seconds += epoch_seconds
        eval_start = time.perf_counter()
        val_losses, val_accuracies = stepper.evaluate(data.val_x, data.val_y)
        eval_seconds = time.perf_counter() - eval_start
        for k, index, config, tools in live():
            val_loss, val_accuracy = val_losses[k], val_accuracies[k]
            record = EpochRecord(
                epoch=epoch,
                train_loss=epoch_loss[k] / steps,
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                train_seconds=epoch_seconds,
                eval_seconds=eval_seconds,
                samples_seen=epoch * n_train,
                steps=step,
                lr=config.lr * factor,
                cpu_seconds=cpu_seconds,
                load_average=load_average(),
            )
            points: tuple[NoiseScalePoint, ...] = ()
            noise = tools.noise
            if noise is not None and math.isfinite(val_loss):
                noise.guess_cost(eval_seconds / len(runs), len(data.val_y))
                where = (float(epoch), step, epoch * n_train, train_seconds)
                last = epoch == epochs or reached_target(config, val_accuracy)
                reached = val_accuracy >= config.target_accuracy
                replica = stepper.replica(k)
                points = noise.after_epoch(replica, data, where, reached=reached, last=last)
            yield EpochEnded(index, record, points)
            if not math.isfinite(val_loss):
                message = f"validation loss became {val_loss} after epoch {epoch}"
                ended[index] = ("diverged", message, step)
            elif reached_target(config, val_accuracy):
                ended[index] = ("completed", f"stopped at the target after epoch {epoch}", step)
        if not live():
            return
    for _, index, _, _ in live():
        ended[index] = ("completed", "", step)
