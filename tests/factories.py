"""Schema objects for tests that need sessions without training: the shared, boring parts."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.pilot import Pilot
from textual.screen import Screen
from textual.worker import get_current_worker

import tui_lab.app.worker as app_worker
from tui_lab.app.screens.compare import CompareScreen
from tui_lab.app.screens.help import HelpScreen
from tui_lab.app.widgets.curves import CurvesChart
from tui_lab.cli.main import main
from tui_lab.core.storage import LoadedSession
from tui_lab.run.events import (
    Event,
    RunEnded,
    RunStarted,
    SessionSaved,
    StepStats,
    SweepStarted,
)
from tui_lab.run.executor import SweepControl
from tui_lab.run.recorder import summarize
from tui_lab.run.sweep import plan_runs
from tui_lab.schema import (
    Environment,
    EpochRecord,
    LossCurve,
    LrScaling,
    OptimizerConfig,
    ParaboloidPreset,
    RunConfig,
    Session,
    Status,
    TrainPreset,
    TrajectorySketch,
)
from tui_lab.schema.analysis import NoiseScalePoint

START = datetime(2025, 1, 1, tzinfo=timezone.utc)

ENVIRONMENT = Environment(
    python="3.11",
    torch="2",
    platform="linux",
    host="test",
    device="cpu",
    device_name="CPU",
    threads=1,
    bslab="0",
)


def run_config(
    batch: int,
    *,
    optimizer: str = "sgd",
    epochs: int = 4,
    target_accuracy: float = 0.9,
    preset_name: str = "t",
) -> RunConfig:
    """A resolved run of LeNet-5 on the digits at lr 0.05."""
    return RunConfig(
        preset_name=preset_name,
        dataset="digits",
        model="lenet5",
        optimizer=OptimizerConfig(name=optimizer).resolved(),
        batch_size=batch,
        batch_size_requested=batch,
        lr=0.05,
        lr_scaling=LrScaling(),
        epochs=epochs,
        target_accuracy=target_accuracy,
        seed=0,
        device="cpu",
    )


def small_sweep(**changes) -> TrainPreset:
    """A sweep that trains in about a second: 160 digits, an MLP, two batch sizes, two epochs
    on one cpu thread, a coarse trajectory sketch and no noise-scale measurement (each costs
    more than the training: the tests of those instruments ask for them); ``changes`` override
    any field."""
    fields = {
        "name": "tiny",
        "dataset": "digits",
        "train_subset": 160,
        "model": "mlp",
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "batch_sizes": [32, "full"],
        "epochs": 2,
        "device": "cpu",
        "parallel": 1,  # in this process: worker processes cost seconds to start
        # one torch thread whatever the batch: a thread count picked by how idle the cores
        # are would make the losses (summation order) depend on how busy the machine is
        "threads": 1,
        "trajectory": {"grid_resolution": 5, "eval_samples": 32},
        "noise_scale": {"enabled": False},
    }
    return TrainPreset.model_validate({**fields, **changes})


def make_session(
    batch: int = 32,
    optimizer: str = "sgd",
    *,
    epochs: int = 4,
    rate: float = 1.0,
    seconds_per_epoch: float = 1.0,
    points: int = 200,
    status: Status = "completed",
    preset: str = "demo",
    minutes: int = 0,
) -> Session:
    """A plausible finished run without training: loss falls and accuracy rises at ``rate``."""
    n_train = 1000
    config = run_config(batch, optimizer=optimizer, epochs=epochs, preset_name=preset)
    fractions = [epochs * (i + 1) / points for i in range(points)]
    curve = LossCurve(
        step=[round(f * n_train / batch) for f in fractions],
        epoch=fractions,
        samples=[round(f * n_train) for f in fractions],
        seconds=[f * seconds_per_epoch for f in fractions],
        loss=[
            (2.3 * math.exp(-rate * f) + 0.02) * (1 + 0.3 * math.sin(i * 7.7))
            for i, f in enumerate(fractions)
        ],
    )
    records = [
        EpochRecord(
            epoch=e,
            train_loss=2.3 * math.exp(-rate * e),
            val_loss=2.3 * math.exp(-rate * e),
            val_accuracy=1 - 0.9 * math.exp(-rate * e),
            train_seconds=seconds_per_epoch,
            eval_seconds=0.1,
            samples_seen=e * n_train,
            steps=e * math.ceil(n_train / batch),
            lr=0.05,
        )
        for e in range(1, epochs + 1)
    ]
    session = Session(
        id=f"{preset}-{optimizer}-b{batch}",
        created=START + timedelta(minutes=minutes),
        config=config,
        environment=ENVIRONMENT,
        n_train=n_train,
        n_val=200,
        steps_per_epoch=math.ceil(n_train / batch),
        status=status,
        epochs=records,
        curve=curve,
    )
    session.summary = summarize(session)
    return session


def write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


HOLD_LIMIT_SECONDS = 300.0  # a test that never lets go fails by its own asserts, not by hanging


def hold_each_run(monkeypatch) -> None:
    """Hold every run of the app's sweep (``worker_mode="thread"``) once its first epoch is saved,
    until the test asks for a stop (skip, cancel or quit): until then the run cannot end, on a
    fast machine or a busy one. Its charts, table and session already show that epoch.

    The hold sits between the sweep and the app's worker: while the worker waits here, the
    engine waits at that epoch's end, and on release it reads the request at its next report
    (so the run needs a second epoch to be cut short in)."""
    real = app_worker.sweep_batches

    def held(request, control: SweepControl):
        waited: set[int] = set()
        for batch in real(request, control):
            yield batch
            for event in batch:
                if (
                    isinstance(event, SessionSaved)
                    and event.session.epochs
                    and event.run_index not in waited
                ):
                    waited.add(event.run_index)
                    until_asked(control)

    monkeypatch.setattr(app_worker, "sweep_batches", held)


def until_asked(control: SweepControl) -> None:
    worker = get_current_worker()
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while not (control.stop_run.is_set() or control.cancel.is_set() or worker.is_cancelled):
        if time.monotonic() > deadline:
            return
        control.cancel.wait(0.02)


async def wait_until(pilot: Pilot, condition, timeout: float = 120.0) -> None:
    """Wait for ``condition``; generous, so a busy 2-core machine slows a test, not fails it."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def workers_busy(app: App) -> bool:
    """Whether a worker other than a sweep's (reading sessions, a search...) is still going."""
    return any(not worker.is_finished for worker in app.workers if worker.group != "sweep")


async def workers_done(pilot: Pilot) -> None:
    """Until those workers are done and the screen has handled what they posted: a thread's
    work takes what it takes on a busy machine, so no fixed pause stands in for it."""
    await wait_until(pilot, lambda: not workers_busy(pilot.app))
    await pilot.pause()


async def charts_drawn(pilot: Pilot) -> None:
    """Until every chart of the screen shows its latest data: a chart redraws at most once a
    second after new data, and later than that on a busy machine."""
    await pilot.pause()
    charts = lambda: pilot.app.screen.query(CurvesChart)  # noqa: E731
    await wait_until(pilot, lambda: not any(chart.redraw_pending for chart in charts()))
    await pilot.pause()


async def sweep_drawn(pilot: Pilot) -> None:
    """Until the Train screen shows the whole sweep: its last event taken in (the sweep has
    ended), its worker done, its table, status and charts drawn from them. A worker is done
    before the screen has read every event it posted, so waiting for that alone races."""
    screen = pilot.app.train_screen
    await wait_until(pilot, lambda: screen.sweep.ended and not screen.running)
    await wait_until(pilot, lambda: not screen.redraw_pending)
    await charts_drawn(pilot)


class CompareHost(App):
    """Stands in for the bslab app: opens Compare, binds ? to help, records notifications."""

    BINDINGS = [Binding("question_mark", "help", "Help")]  # noqa: RUF012

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = paths
        self.notes: list[str] = []

    def on_mount(self) -> None:
        self.push_screen(CompareScreen(self.paths))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def notify(self, message: str, **kwargs) -> None:  # type: ignore[override]
        self.notes.append(message)
        super().notify(message, **kwargs)


def session_from_accuracies(
    batch: int, accuracies: list[float], seconds: float, target=0.9
) -> Session:
    """A finished run with the given validation accuracy after each epoch."""
    config = run_config(batch, epochs=len(accuracies), target_accuracy=target)
    steps = 1000 // batch
    session = Session(
        id=f"s{batch}",
        created=datetime.now(timezone.utc),
        config=config,
        environment=ENVIRONMENT,
        n_train=1000,
        n_val=100,
        steps_per_epoch=steps,
        status="completed",
    )
    for i, acc in enumerate(accuracies, start=1):
        session.epochs.append(
            EpochRecord(
                epoch=i,
                train_loss=1 / i,
                val_loss=1 / i,
                val_accuracy=acc,
                train_seconds=seconds,
                eval_seconds=0.1,
                samples_seen=1000 * i,
                steps=steps * i,
                lr=0.05,
            )
        )
    session.summary = summarize(session)
    return session


def noise_point(
    epoch: float, b_simple: float, *, samples: int = 0, spread: float = 1.25, **changes
) -> NoiseScalePoint:
    """A noise-scale measurement of B_simple, with a 95% interval a factor ``spread`` each way."""
    fields = {
        "epoch": epoch,
        "step": 0,
        "samples": samples,
        "seconds": 0.0,
        "b_simple": b_simple,
        "b_low": b_simple / spread,
        "b_high": b_simple * spread,
        "grad_sq": 1.0,
        "grad_sq_se": 0.1,
        "trace_sigma": b_simple,
        "trace_sigma_se": 0.1 * b_simple,
        "probe_size": 1024,
    }
    return NoiseScalePoint(**{**fields, **changes})


SMALL_LAB = ParaboloidPreset(
    kind="paraboloid",
    optimizers=[OptimizerConfig(name="sgd"), OptimizerConfig(name="rprop")],
    batch_sizes=[4],
    epochs=10,
)


class Host(App):
    """Stands in for the bslab app: shows one screen and records notifications."""

    def __init__(self, make_screen: Callable[[], Screen]) -> None:
        super().__init__()
        self.make_screen = make_screen
        self.notes: list[str] = []

    def on_mount(self) -> None:
        self.push_screen(self.make_screen())

    def notify(self, message: str, **kwargs) -> None:  # type: ignore[override]
        self.notes.append(message)
        super().notify(message, **kwargs)


def bowl_sketch(turns: float = 1.5, scale: float = 3.0) -> TrajectorySketch:
    """A path spiralling into the final weights at (0, 0), over an elliptical bowl."""
    steps = list(range(0, 300, 10))
    fractions = [1 - s / steps[-1] for s in steps]
    angles = [2 * math.pi * turns * f for f in fractions]
    grid = [-4 + 8 * i / 14 for i in range(15)]
    return TrajectorySketch(
        steps=steps,
        path_x=[scale * f * math.cos(a) for f, a in zip(fractions, angles, strict=True)],
        path_y=[scale * f * math.sin(a) / 2 for f, a in zip(fractions, angles, strict=True)],
        explained_variance=(0.81, 0.12),
        grid_x=grid,
        grid_y=grid,
        grid_loss=[[0.05 + 0.1 * x * x + 0.4 * y * y for x in grid] for y in grid],
        eval_samples=256,
    )


def sketched(session: Session, **sketch_options) -> LoadedSession:
    session.trajectory = bowl_sketch(**sketch_options)
    return LoadedSession(Path(f"{session.id}.json"), session)


PAIR = [
    sketched(make_session(8, rate=1.2)),
    sketched(make_session(1024, rate=0.5), turns=0.4, scale=1.5),
]


SWEEP = [
    make_session(1, rate=0.3, seconds_per_epoch=9.0, status="diverged", minutes=10),
    make_session(32, rate=1.0, seconds_per_epoch=1.0, minutes=10),
    make_session(256, rate=0.6, seconds_per_epoch=0.4, minutes=10),
    make_session(32, "adam", rate=1.5, seconds_per_epoch=1.2, minutes=10),
]


OLD_RUN = make_session(64, preset="older", minutes=0)


def seed_session(
    batch: int, seed: int, *, done: int = 4, seconds_per_epoch: float = 1.0
) -> Session:
    """Seed ``seed`` of ``sgd b=batch`` in a sweep of 3 seeds and 4 epochs, ``done`` of them
    trained (fewer: still running, its curves shorter than its siblings')."""
    session = make_session(
        batch,
        epochs=done,
        rate=0.8 + 0.2 * seed,
        seconds_per_epoch=seconds_per_epoch,
        status="completed" if done == 4 else "running",
        preset="seeds",
    )
    config = session.config.updated(seed=seed, group_id=f"seeds/b{batch}", group_size=3, epochs=4)
    session = session.model_copy(update={"id": f"seeds-b{batch}-s{seed}", "config": config})
    session.summary = summarize(session)
    return session


def seeded_sweep_events() -> tuple[list[Event], list[Event]]:
    """A live sweep of sgd b=8 and b=64, 3 seeds each, 2 runs at once, from made-up events:
    b=8's seeds 0 and 1 done, seed 2 at 2000 of 4000 samples (5 samples/s); b=64's seed 0 at
    1000 (20/s), seeds 1 and 2 not started. Then (the second list) both running runs get on.

    The whole sweep's ETA, by hand: b=8 s=2 has 2000 samples left at 1.05 s/5 (evaluation
    adds 5% to training time), 420 s; b=64 s=0 3000 at 1.2 s/20 (its epoch: 0.5 s + 0.1 s
    evaluation), 180 s; the two b=64 seeds to come 4000 at their sibling's cost, 240 s each.
    On 2 slots the first starts when b=64 s=0 ends (at 180 s, to 420 s), the second at 420 s:
    660 s. After the second list: 120 + 240 = 360 s, then 210 + 240 = 450 s.
    """
    sessions = [
        seed_session(8, 0, seconds_per_epoch=200.0),
        seed_session(8, 1, seconds_per_epoch=200.0),
        seed_session(8, 2, done=2, seconds_per_epoch=2.0),
        seed_session(64, 0, done=1, seconds_per_epoch=0.5),
    ]
    pending = [seed_session(64, seed).config for seed in (1, 2)]
    configs = [s.config for s in sessions] + pending
    events: list[Event] = [SweepStarted("seeds", configs)]

    def start(index: int) -> None:
        config = configs[index]
        events.append(RunStarted(index, config, ENVIRONMENT, 1000, 200, math.ceil(1000 / 8)))
        events.append(SessionSaved(index, Path(f"{index}.json"), sessions[index], final=False))

    def step(index: int, samples: int, speed: float) -> StepStats:
        epoch = samples // 1000 + 1
        return StepStats(index, epoch, samples // 8, 0.0, samples, 0.0, 0.3, 0.05, speed)

    for index in (0, 1):
        start(index)
        events.append(RunEnded(index, "completed", ""))
        events.append(SessionSaved(index, Path(f"{index}.json"), sessions[index], final=True))
    for index in (2, 3):
        start(index)
    events += [step(2, 2000, 5.0), step(3, 1000, 20.0)]
    return events, [step(2, 3000, 5.0), step(3, 2000, 20.0)]


def crowded_sweep_events() -> list[Event]:
    """Shallue's protocol as ``presets/shallue-digits.json`` runs it: 10 batch sizes × 3 lrs × 4
    seeds, 120 runs with long labels (``sgd b=1024 lr=1.25e-3 s=3``); runs 0 and 1 training,
    run 0 35% of the way through (epoch 15 of 40), run 1 just started (no report yet)."""
    preset = small_sweep(
        batch_sizes=[2**k for k in range(1, 11)],
        lr_grid={"factors": [0.25, 0.5, 1]},
        lr_scaling={"rule": "linear", "base_batch_size": 32},
        replicates=4,
        epochs=40,
    )
    configs = plan_runs(preset, 1437, "cpu")
    events: list[Event] = [SweepStarted("crowd", configs)]
    for index in (0, 1):
        events.append(RunStarted(index, configs[index], ENVIRONMENT, 1437, 360, 719))
    events.append(StepStats(0, 15, 10_059, 0.0, 20_118, 9.0, 0.3, configs[0].lr, 800.0))
    return events


def as_at_a_terminal() -> None:
    """``preexec_fn`` for a child that should meet Ctrl+C and SIGHUP as a program started at a
    terminal does: a suite run under ``nohup`` or as a background job hands its children those
    signals ignored, and bslab rightly keeps an inherited ignore (``nohup bslab ...``)."""
    import signal

    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def legend_marks(out: str, labels: list[str]) -> list[str]:
    """The mark printed just before each legend label in colourless (piped) chart output: in
    plotext's framed legend (``◆◆ sgd b=4``) or a legend line below a chart (``· perfect``)."""
    marks = []
    for label in labels:
        line = next(line for line in out.splitlines() if label in line)
        marks.append(line[: line.index(label)].rstrip()[-1])
    return marks


def assert_told_apart(out: str, labels: list[str]) -> None:
    """Without colour a reader tells these series apart: each has a mark of its own in the
    legend, and that mark is drawn on the chart too (more than once: along its line)."""
    marks = legend_marks(out, labels)
    assert len(set(marks)) == len(labels), dict(zip(labels, marks, strict=True))
    assert all(out.count(mark) >= 3 for mark in marks), marks
