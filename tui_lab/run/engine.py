"""The training engine: one run, top to bottom, as a stream of events. It knows nothing of any UI.

The whole data set lives on the device; each epoch cuts batches from a fresh seeded permutation,
so there is no per-sample Python work. Losses are summed on the device and read (one host sync)
only a few times a second, when the stop signal is polled too. Non-finite losses end the run
as ``diverged``, an allocation failure as ``out_of_memory``; both are outcomes, not crashes.
"""

from __future__ import annotations

import math
import platform
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tui_lab import __version__
from tui_lab.analysis.memory import PeakMemory
from tui_lab.analysis.noise_scale import (
    NoiseScaleEstimator,
    TwoBatchSample,
    measure_two_batch,
    noise_scale_available,
)
from tui_lab.analysis.trajectory import TrajectoryRecorder, trajectory_sketch
from tui_lab.core import evaluation
from tui_lab.core.data import Data
from tui_lab.core.devices import device_name, is_out_of_memory, synchronize
from tui_lab.core.models import seeded_model
from tui_lab.core.optimizers import build_optimizer, warmup_factor
from tui_lab.run.events import EpochEnded, Event, RunEnded, RunStarted, StepStats
from tui_lab.run.train_steps import EagerSteps, Measure, StepKind, graph_plan, train_steps
from tui_lab.schema import Environment, EpochRecord, RunConfig
from tui_lab.schema.trajectory import TrajectorySettings, TrajectorySketch

# torch's own thread count, before any run changes it (runs set their own, see cpu_threads).
DEFAULT_THREADS = torch.get_num_threads()
# Below this batch size each operation is too small to split across cores: extra threads only
# add synchronisation, which collapses throughput when anything else wants a core.
SMALL_BATCH = 16
REPORT_SECONDS = 0.25  # a few progress reports a second: smooth live charts, rare host syncs
EVAL_CHUNK = 2048


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
        training_step=step,
        training_step_reason=why,
    )


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return math.ceil(n_train / batch_size)


def cpu_threads(config: RunConfig) -> int:
    """The preset's thread count, else one thread for small batches and torch's default above."""
    if config.threads:
        return config.threads
    return 1 if config.batch_size < SMALL_BATCH else DEFAULT_THREADS


def report_due(since_last_report: float, last_step_of_epoch: bool) -> bool:
    """Report (and sync with the device) at the end of every epoch and every REPORT_SECONDS.

    Time-based rather than every n steps: a fixed step count either syncs a GPU every other
    step on short epochs (which halves its throughput) or leaves minutes between reports on long
    ones. Training itself does not depend on when reports happen.
    """
    return last_step_of_epoch or since_last_report >= REPORT_SECONDS


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean loss and accuracy on a whole split, in eval mode, in chunks to bound memory."""
    model.eval()
    loss, accuracy = evaluation.evaluate(model, x, y, batch_size=EVAL_CHUNK)
    model.train()
    return loss.item(), accuracy.item()


def train_run(
    config: RunConfig,
    data: Data,
    *,
    run_index: int = 0,
    stop: StopSignal | None = None,
) -> Iterator[Event]:
    """Train one run, yielding its events; the last is RunEnded, with the final weights."""
    stop = stop or NeverStop()
    device = torch.device(config.device)
    n_train = data.n_train
    steps = steps_per_epoch(n_train, config.batch_size)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(config))
    kind, why = graph_plan(config)
    env = environment(config.device, kind, why)
    yield RunStarted(run_index, config, env, n_train, len(data.val_y), steps)
    model = None
    memory = PeakMemory(device)
    instruments = None
    try:
        memory.reset()
        data = data.to(device)
        model = seeded_model(config.model, data, config.seed, device)
        optimizer = build_optimizer(
            model.parameters(), config.optimizer, config.lr, capturable=kind == "cuda_graph"
        )
        instruments = Instruments.for_run(config, config.epochs * steps)
        stepper = train_steps(kind, model, optimizer, data.train_x, data.train_y, config)
        status, message = yield from _epochs(config, data, stepper, instruments, run_index, stop)
    except Exception as error:
        status = "out_of_memory" if is_out_of_memory(error) else "failed"
        message = f"{type(error).__name__}: {error}"
        model = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
    peak = memory.read()
    sketch = None
    if model is not None and instruments is not None and status == "completed":
        # A stopped run ends at once: the user is waiting (and a cut path says little).
        sketch = instruments.sketch(model, data, step=config.epochs * steps)  # all steps taken
    weights = None
    if model is not None:
        weights = {name: t.detach().cpu() for name, t in model.state_dict().items()}
    yield RunEnded(run_index, status, message, peak, sketch, weights)


@dataclass
class Instruments:
    """The optional measurements of a run: gradient noise scale and the weight trajectory."""

    noise: NoiseScaleEstimator | None
    noise_every: int
    trajectory: TrajectoryRecorder | None
    trajectory_settings: TrajectorySettings

    @classmethod
    def for_run(cls, config: RunConfig, total_steps: int) -> Instruments:
        noise_on = config.noise_scale.enabled and noise_scale_available(config.batch_size)
        traj = config.trajectory
        return cls(
            noise=NoiseScaleEstimator(config.noise_scale.ema) if noise_on else None,
            noise_every=config.noise_scale.every,
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

    def measures_noise(self, step: int) -> bool:
        """Every k-th step (a measuring step costs about two half-batch passes instead of one)."""
        return self.noise is not None and step % self.noise_every == 0

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
    config: RunConfig,
    data: Data,
    stepper: EagerSteps,
    instruments: Instruments,
    run_index: int,
    stop: StopSignal,
) -> Iterator[Event]:
    """The training loop proper; returns (status, message).

    Per step it only decides what kind of step to take: anything else (reading the loss,
    polling the stop signal, timing) waits for a report, a few times a second.
    """
    device = data.train_x.device
    model, optimizer = stepper.model, stepper.optimizer
    batch, n_train = config.batch_size, data.n_train
    steps = steps_per_epoch(n_train, batch)
    shuffler = torch.Generator().manual_seed(config.seed)
    warming_up = config.lr_scaling.warmup_epochs > 0
    noise, trajectory = instruments.noise, instruments.trajectory
    measure = _noise_measure(config.micro_batch_size) if noise is not None else None
    lr = config.lr
    step = 0
    train_seconds = 0.0
    model.train()
    for epoch in range(1, config.epochs + 1):
        stepper.begin_epoch(torch.randperm(n_train, generator=shuffler))
        epoch_loss = 0.0  # the device's running total at the last report
        interval_steps = 0
        interval_start = time.perf_counter()
        epoch_start = interval_start
        for i in range(steps):
            if trajectory is not None and trajectory.wants(step):
                trajectory.record(model, step)
            if warming_up:
                lr = config.lr * warmup_factor(config.lr_scaling, step, steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
            sample = stepper.step(i, measure if instruments.measures_noise(step) else None)
            if sample is not None:
                noise.update(sample)  # type: ignore[union-attr]
            interval_steps += 1
            step += 1
            if report_due(time.perf_counter() - interval_start, i == steps - 1):
                # The interval's one host sync. The total runs over the epoch, so the epoch's
                # loss does not depend on when reports happened to fall.
                total = stepper.loss_sum.item()
                mean_loss = (total - epoch_loss) / interval_steps
                epoch_loss = total
                now = time.perf_counter()
                seconds = train_seconds + (now - epoch_start)
                samples = (epoch - 1) * n_train + min((i + 1) * batch, n_train)
                yield StepStats(
                    run_index,
                    epoch,
                    step,
                    (i + 1) / steps,
                    samples,
                    seconds,
                    mean_loss,
                    lr,
                    interval_steps * batch / max(now - interval_start, 1e-9),
                    noise.estimate if noise is not None else None,
                )
                if not math.isfinite(mean_loss):
                    return "diverged", f"training loss became {mean_loss} at step {step}"
                interval_steps = 0
                interval_start = time.perf_counter()  # the consumer's time is not training time
                epoch_start += interval_start - now
                if stop.is_set():
                    return "interrupted", f"stopped during epoch {epoch} at step {step}"
        synchronize(device)
        epoch_seconds = time.perf_counter() - epoch_start
        train_seconds += epoch_seconds
        eval_start = time.perf_counter()
        val_loss, val_accuracy = evaluate(model, data.val_x, data.val_y)
        record = EpochRecord(
            epoch=epoch,
            train_loss=epoch_loss / steps,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            train_seconds=epoch_seconds,
            eval_seconds=time.perf_counter() - eval_start,
            samples_seen=epoch * n_train,
            steps=step,
            lr=lr,
        )
        point = noise.point(epoch, step) if noise is not None else None
        yield EpochEnded(run_index, record, point)
        if not math.isfinite(val_loss):
            return "diverged", f"validation loss became {val_loss} after epoch {epoch}"
    return "completed", ""


def _noise_measure(micro: int | None) -> Measure:
    """A measuring step: the batch backpropagated as two halves (see analysis.noise_scale)."""

    def measure(model: nn.Module, x: Tensor, y: Tensor) -> TwoBatchSample:
        return measure_two_batch(model, F.cross_entropy, x, y, micro_batch_size=micro)

    return measure
