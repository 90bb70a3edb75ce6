"""Turns a run's events into its session file, saved atomically after every epoch and every few
seconds while the run trains (so that ``bslab watch`` sees it move), and the sweep's plan."""

from __future__ import annotations

import math
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tui_lab.core.storage import HEARTBEAT_SECONDS, save_model
from tui_lab.run.engine import available_cores, load_average
from tui_lab.run.events import EpochEnded, Event, RunEnded, RunStarted, SessionSaved, StepStats
from tui_lab.schema import EpochRecord, LossCurve, RunConfig, Session, Status, Summary
from tui_lab.schema.plan import PLAN_SUFFIX, SweepPlan
from tui_lab.schema.session import at_chance

MIN_CPU_SHARE = 0.75  # of threads × training seconds, below which the run waited for cores
LOAD_SLACK = 1.0  # load average above cores + this: more runnable work than cores
# While a run trains it is saved every LIVE_SAVE_SECONDS (a watcher's view then moves within a few
# seconds, however long an epoch), less often if saving would take more than MAX_SAVE_SHARE of
# the time (a slow disk slows the view, not the training), and at least every HEARTBEAT_SECONDS.
# benchmarks/live_saves.py: at batch 1 on a busy 2-core machine, saving took 0.56% of a run's
# wall time at 2 s (0.16% with only the per-epoch saves), 3.5% at every 0.25 s progress report.
LIVE_SAVE_SECONDS = 2.0
MAX_SAVE_SHARE = 0.01


class CurveBuffer:
    """Keeps at most ``limit`` points, evenly spread over the whole run, whatever its length.

    When the curve fills up, neighbouring pairs are averaged and from then on every incoming
    point is averaged with the next ones too (the stride doubles), so old and new parts of the
    run keep the same resolution.
    """

    def __init__(self, curve: LossCurve, limit: int):
        self.curve = curve
        self.limit = limit
        self.stride = 1
        self.pending: list[StepStats] = []

    def append(self, stats: StepStats) -> None:
        self.pending.append(stats)
        if len(self.pending) >= self.stride:
            self.flush()

    def flush(self) -> None:
        """Add the pending points as one averaged point (also called when the run ends)."""
        if not self.pending:
            return
        _append_point(self.curve, self.pending)
        self.pending.clear()
        if len(self.curve.loss) > self.limit:
            self._halve()

    def provisional(self) -> LossCurve:
        """The curve with the pending points as one more point, as far as training has got: a
        saved copy for watchers; the buffer itself waits for the stride to fill."""
        if not self.pending:
            return self.curve
        curve = self.curve.model_copy(deep=True)
        _append_point(curve, self.pending)
        return curve

    def _halve(self) -> None:
        c = self.curve
        # Keep x at the later point of each pair (where the averaged losses end) and the mean loss.
        c.loss[:] = [(a + b) / 2 for a, b in zip(c.loss[0::2], c.loss[1::2], strict=False)]
        for xs in (c.step, c.epoch, c.samples, c.seconds):
            xs[:] = xs[1::2]
        self.stride *= 2


def _append_point(curve: LossCurve, reports: list[StepStats]) -> None:
    """The reports as one point: where the last one was taken, and their mean loss."""
    last = reports[-1]
    curve.step.append(last.step)
    curve.epoch.append(round(last.epoch - 1 + last.epoch_fraction, 4))
    curve.samples.append(last.samples)
    curve.seconds.append(round(last.seconds, 4))
    curve.loss.append(sum(p.loss for p in reports) / len(reports))


def summarize(session: Session) -> Summary:
    """Time per epoch, throughput, and when (epochs, steps, samples, seconds) the target was hit."""
    epochs = session.epochs
    target = session.config.target_accuracy
    train_seconds = sum(e.train_seconds for e in epochs)
    hit = next((e for e in epochs if e.val_accuracy >= target), None)
    best = max(epochs, key=lambda e: e.val_accuracy, default=None)
    return Summary(
        epochs_run=len(epochs),
        seconds_per_epoch=train_seconds / len(epochs) if epochs else None,
        samples_per_second=epochs[-1].samples_seen / train_seconds if train_seconds else None,
        train_seconds=train_seconds,
        epochs_to_target=hit.epoch if hit else None,
        steps_to_target=hit.steps if hit else None,
        samples_to_target=hit.samples_seen if hit else None,
        seconds_to_target=sum(e.train_seconds for e in epochs[: hit.epoch]) if hit else None,
        best_accuracy=best.val_accuracy if best else None,
        best_epoch=best.epoch if best else None,
        final_accuracy=epochs[-1].val_accuracy if epochs else None,
        final_val_loss=epochs[-1].val_loss if epochs else None,
        learned=learned(epochs[-1]) if epochs else None,
        **timing_check(session),
    )


def learned(last: EpochRecord) -> bool:
    """False for a run that ended as it started: accuracy at chance (quickstart's batch 1: 11%,
    its loss still ln 10). Its "never reached the target" would read as slow, not stuck. The
    loss alone says little: a full-batch run two epochs in has ln 10 and 30% accuracy."""
    return not at_chance(last.val_accuracy) and math.isfinite(last.val_loss)


def busy(utilisation: float | None, load: float | None, cores: int) -> bool:
    """Did other work hold the cores? The run's threads got under MIN_CPU_SHARE of the CPU time
    they could use (cpu only), or the load average exceeded the cores (any device)."""
    return (utilisation is not None and utilisation < MIN_CPU_SHARE) or (
        load is not None and load > cores + LOAD_SLACK
    )


def trial_busy(device: str) -> Callable[[float, float], bool]:
    """A judge of short timings (the batch finder's few steps) from their CPU and wall seconds:
    on the cpu a training step keeps at least one thread busy throughout, so a CPU share under
    MIN_CPU_SHARE of the wall means it waited for a core; on any device, the load average."""

    def judge(cpu_seconds: float, wall_seconds: float) -> bool:
        share = cpu_seconds / wall_seconds if device == "cpu" and wall_seconds > 0 else None
        return busy(share, load_average(), available_cores())

    return judge


def timing_check(session: Session) -> dict[str, Any]:
    """Were the run's timings taken on a busy machine? On the cpu, a run whose threads got less
    than 3/4 of the CPU time they could use was waiting for cores; on any device, a load
    average above the core count means more work than cores. Returns Summary fields."""
    epochs = [e for e in session.epochs if e.cpu_seconds is not None]
    loads = [e.load_average for e in session.epochs if e.load_average is not None]
    env = session.environment
    cores = env.cores or env.threads
    wall = sum(e.train_seconds for e in epochs)
    utilisation = None
    if wall > 0 and session.config.device == "cpu":
        cpu = sum(e.cpu_seconds or 0.0 for e in epochs)
        utilisation = cpu / (wall * min(env.threads, cores))
    load = max(loads, default=None)
    return {
        "cpu_utilisation": utilisation,
        "load_average": load,
        "contended": busy(utilisation, load, cores),
    }


def session_filename(session: Session) -> str:
    cfg = session.config
    batch = "full" if cfg.batch_size_requested == "full" else cfg.batch_size
    stamp = session.created.strftime("%Y%m%d-%H%M%S")
    lr = f"-lr{cfg.lr:.3g}" if cfg.lr_grid_size > 1 else ""
    seed = f"-s{cfg.seed}" if cfg.group_size > 1 else ""
    name = f"{cfg.preset_name}-{cfg.optimizer.name}-b{batch}{lr}{seed}-{stamp}-{session.id[:6]}"
    return f"{name}.json".replace(" ", "_")


def save_plan(
    out_dir: Path,
    preset_name: str,
    runs: list[RunConfig],
    slots: int | None = None,
    tasks: list[list[int]] | None = None,
) -> Path | None:
    """Save the sweep's plan beside its sessions, for watchers to show the runs to come and
    estimate its end (``slots``, ``tasks``: as the executor plans them); None for runs planned
    without a sweep id (``plan_runs`` always gives one)."""
    group = runs[0].group_id if runs else None
    if group is None:
        return None
    created = datetime.now(timezone.utc)
    plan = SweepPlan(
        id=group.split("/")[0],
        preset_name=preset_name,
        created=created,
        host=socket.gethostname(),
        pid=os.getpid(),
        runs=runs,
        slots=slots,
        tasks=tasks,
    )
    name = f"{preset_name}-{created:%Y%m%d-%H%M%S}-{plan.id}{PLAN_SUFFIX}".replace(" ", "_")
    path = Path(out_dir) / name
    save_model(plan, path)
    return path


class SessionRecorder:
    """Consumes one run's events and keeps its session file on disk up to date."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.session: Session | None = None
        self.path: Path | None = None
        self.curve: CurveBuffer | None = None
        self.last_save = 0.0
        self.save_interval = LIVE_SAVE_SECONDS

    def handle(self, event: Event) -> SessionSaved | None:
        """Update the session; returns a SessionSaved event whenever the file was written."""
        if isinstance(event, RunStarted):
            self.session = Session(
                id=secrets.token_hex(8),
                created=datetime.now(timezone.utc),
                config=event.config,
                environment=event.environment,
                n_train=event.n_train,
                n_val=event.n_val,
                steps_per_epoch=event.steps_per_epoch,
                pid=os.getpid(),
                stacked=event.stacked,
            )
            # A run started again (retried after its worker died) keeps its file.
            self.path = self.path or self.out_dir / session_filename(self.session)
            self.curve = CurveBuffer(self.session.curve, event.config.curve_points)
            return self.save(event.run_index, final=False)
        if isinstance(event, StepStats) and self.curve is not None and self.session is not None:
            self.curve.append(event)
            self.session.noise_scale.extend(event.noise_scale)
            if time.monotonic() - self.last_save >= self.save_interval:  # live, a sign of life
                return self.save(event.run_index, final=False)
        elif isinstance(event, EpochEnded) and self.session is not None:
            self.session.epochs.append(event.record)
            self.session.noise_scale.extend(event.noise_scale)
            self.session.summary = summarize(self.session)
            return self.save(event.run_index, final=False)
        elif isinstance(event, RunEnded) and self.session is not None:
            # Not saved yet: the file says how the run ended only once its weights are beside it
            # (finish), so a fault while saving them cannot leave a "completed" run without them.
            self.session.peak_memory = event.peak_memory
            self.session.trajectory = event.trajectory
            self.session.noise_scale_note = event.noise_note
            self._end(event.status, event.message)
        return None

    def finish(
        self,
        run_index: int,
        *,
        status: Status | None = None,
        message: str = "",
        weights_file: str | None = None,
    ) -> SessionSaved | None:
        """The last save of the run, once its weights are beside it (or it was cut short)."""
        if self.session is None:
            return None
        if status is not None:
            self._end(status, message)
        self.session.weights_file = weights_file
        return self.save(run_index, final=True)

    def _end(self, status: Status, message: str) -> None:
        assert self.session is not None
        if self.curve is not None:
            self.curve.flush()
        self.session.status = status
        self.session.message = message
        self.session.summary = summarize(self.session)

    def save(self, run_index: int, *, final: bool) -> SessionSaved:
        """Write the session (StorageFault if it cannot be), with the time as its heartbeat; a run
        in progress is saved with its curve up to the latest report."""
        assert self.session is not None and self.path is not None
        started = time.monotonic()
        self.session.heartbeat = datetime.now(timezone.utc)
        saved = self.session.model_copy(deep=True)
        if not final and self.curve is not None:
            saved.curve = self.curve.provisional()
        save_model(saved, self.path)
        self.last_save = time.monotonic()
        cost = self.last_save - started
        self.save_interval = min(HEARTBEAT_SECONDS, max(LIVE_SAVE_SECONDS, cost / MAX_SAVE_SHARE))
        return SessionSaved(run_index, self.path, saved, final)
