"""``bslab watch DIR``: a folder another process writes, followed live and never written to.

The producer is the test itself: it pulls the sweep's events one at a time (the sweep trains
only while pulled), or writes session files by hand, so the watcher never races training.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import socket
import stat
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from factories import make_session, small_sweep, wait_until

from tui_lab.app.live_sweep import LiveSweep
from tui_lab.app.screens.compare import CompareScreen
from tui_lab.app.watch import WatchApp
from tui_lab.app.watch_folder import FollowedSweep, sweep_events
from tui_lab.app.widgets.curves import CurvesChart
from tui_lab.app.widgets.run_table import RunTable
from tui_lab.cli.main import main
from tui_lab.core.storage import load_plan, save_model
from tui_lab.errors import BadInput
from tui_lab.run import engine, recorder
from tui_lab.run.events import RunEnded, SessionSaved, StepStats, SweepEnded
from tui_lab.run.sweep import prepare_sweep, run_sweep
from tui_lab.schema.plan import PLAN_SUFFIX, SweepPlan
from tui_lab.schema.trajectory import TrajectorySettings


def sync(test):
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))

    return wrapper


def checksums(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of the folder (hidden ones too): its content's hash and modification time."""
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
    }


def read_only(folder: Path) -> None:
    """chmod -w the folder and its files (root ignores it: checksums prove nothing was written)."""
    for path in [*folder.iterdir(), folder]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def rows(app: WatchApp) -> list[str]:
    table = app.watch_screen.query_one(RunTable)
    return [" ".join(map(str, table.get_row_at(r))) for r in range(table.row_count)]


def plotted(app: WatchApp) -> dict[str, int]:
    """Points of each run's line on the loss chart."""
    chart = app.watch_screen.query_one("#loss-chart", CurvesChart)
    return {s.label: len(s.x) for s in chart.series() if s.label}


def pull_until(events, condition):
    """Train until the sweep yields an event meeting ``condition`` (the sweep is then held)."""
    for event in events:
        if condition(event):
            return event
    raise AssertionError("the sweep ended first")


def live_save(min_points: int):
    def condition(event) -> bool:
        return (
            isinstance(event, SessionSaved)
            and not event.final
            and len(event.session.curve.step) >= min_points
        )

    return condition


@pytest.fixture
def watched_preset():
    return small_sweep(
        epochs=40, batch_sizes=[8, "full"], trajectory=TrajectorySettings(enabled=False)
    )


@sync
async def test_watch_follows_a_sweep_run_by_run_and_never_writes(
    watched_preset, tmp_path, monkeypatch
):
    monkeypatch.setattr(recorder, "LIVE_SAVE_SECONDS", 0.0)  # a save at every report
    folder = tmp_path / "sessions"
    folder.mkdir()
    app = WatchApp(folder)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "No runs in" in app.watch_screen.headline)
        events = run_sweep(prepare_sweep(watched_preset, out_dir=folder))
        pull_until(events, live_save(3))  # the first run trains, saved mid-run; then held
        await wait_until(pilot, lambda: len(rows(app)) == 2 and "running" in rows(app)[0])
        assert "pending" in rows(app)[1]  # from the sweep's plan: not started yet
        await wait_until(pilot, lambda: plotted(app).get("sgd b=8", 0) >= 3)
        progress = str(app.watch_screen.query_one("#progress-status").render())
        assert "Run 1/2" in progress and "sgd b=8" in progress
        # Held: while the watcher keeps looking, it changes nothing in the folder.
        before = checksums(folder)
        await pilot.pause(2.5)
        assert checksums(folder) == before
        shown = plotted(app)["sgd b=8"]
        pull_until(events, live_save(shown + 3))  # the run trains on: its curve moves
        await wait_until(pilot, lambda: plotted(app)["sgd b=8"] >= shown + 3)
        for _ in events:  # the rest of the sweep
            pass
        await wait_until(pilot, lambda: "completed" in rows(app)[1])
        assert "Sweep tiny[/b]: 2 runs saved in" in app.watch_screen.headline
        await pilot.press("f4")  # Compare reads the same folder
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.ready)
        assert len(app.screen.sessions) == 2
        finished = checksums(folder)
        await pilot.pause(1.5)
        assert checksums(folder) == finished


@sync
async def test_watch_reads_a_read_only_copy(watched_preset, tmp_path):
    folder = tmp_path / "copy"
    for _ in run_sweep(prepare_sweep(watched_preset.updated(epochs=2), out_dir=folder)):
        pass
    read_only(folder)
    before = checksums(folder)
    app = WatchApp(folder)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "2 runs saved" in app.watch_screen.headline)
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.ready)
        assert len(app.screen.sessions) == 2
    assert checksums(folder) == before
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files


def running(session, *, silent: float, pid: int | None = None):
    """A run saved as training ``silent`` seconds ago by process ``pid``."""
    now = datetime.now(timezone.utc)
    here = session.environment.model_copy(update={"host": socket.gethostname()})
    return session.model_copy(
        update={
            "environment": here,
            "status": "running",
            "summary": None,
            "pid": pid or os.getpid(),
            "heartbeat": now - timedelta(seconds=silent),
            "created": now - timedelta(seconds=silent + 60),
        }
    )


def planned(sessions, *, pending: int = 1, pid: int | None = None) -> SweepPlan:
    runs = [s.config for s in sessions]
    runs += [runs[-1].model_copy(update={"seed": 100 + i}) for i in range(pending)]
    return SweepPlan(
        id="sw",
        preset_name="demo",
        created=datetime.now(timezone.utc),
        host=socket.gethostname(),
        pid=pid or os.getpid(),
        runs=runs,
    )


def in_sweep(session, index: int):
    config = session.config.model_copy(update={"group_id": f"sw/{index}"})
    return session.model_copy(update={"config": config})


def test_each_runs_state_training_stale_stopped_or_ended():
    """Live and saving: training; alive but silent 30 s: stale; its process gone: stopped;
    planned runs not started: pending; runs that ended: as saved."""
    sessions = [
        in_sweep(running(make_session(8), silent=1), 0),
        in_sweep(running(make_session(16), silent=45), 1),
        in_sweep(running(make_session(32), silent=1, pid=2**22 + 1), 2),  # no such process
        in_sweep(make_session(64, status="interrupted"), 3),
    ]
    plan = planned(sessions)
    files = [(Path(f"{i}.json"), session) for i, session in enumerate(sessions)]
    events = sweep_events(FollowedSweep("sw", "demo", plan, files))
    sweep = LiveSweep()
    for event in events:
        sweep.apply(event)
    assert [run.status for run in sweep.runs] == [
        "running", "stale", "stopped", "interrupted", "pending",
    ]  # fmt: skip
    assert "no save for 45 s" in sweep.runs[1].message
    assert not any(isinstance(e, SweepEnded) for e in events)  # its writer (this test) lives
    assert isinstance(next(e for e in events if isinstance(e, StepStats)), StepStats)


def test_a_planned_sweep_whose_process_is_gone_ends_with_its_runs_to_come_skipped():
    done = in_sweep(make_session(8), 0)
    plan = planned([done], pending=2, pid=2**22 + 1)
    events = sweep_events(FollowedSweep("sw", "demo", plan, [(Path("a"), done)]))
    assert isinstance(events[-1], SweepEnded) and events[-1].cancelled
    assert not any(isinstance(e, RunEnded) for e in events)


@pytest.mark.parametrize(
    ("field", "value"),
    [("tasks", [[0], [7]]), ("tasks", [[0, 1], [1]]), ("slots", 10**30)],
    ids=["a task names a run not planned", "a run in two tasks", "slots beyond any machine"],
)
def test_a_plan_whose_tasks_or_slots_cannot_be_played_forward_is_named_not_followed(
    tmp_path, field, value
):
    """The ETA indexes the runs with the plan's tasks and fills its slots: a hostile plan must be
    refused where it is read, naming its file, not crash or exhaust the watcher later."""
    plan = planned([in_sweep(make_session(8), 0)]).model_dump(mode="json")
    path = tmp_path / f"demo-sw{PLAN_SUFFIX}"
    path.write_text(json.dumps({**plan, field: value}))
    with pytest.raises(BadInput) as caught:
        load_plan(path)
    assert path.name in caught.value.describe()


def test_the_sweep_saves_its_plan_and_live_runs_save_their_curve_so_far(tmp_path, monkeypatch):
    """The plan lists every run before the first starts; a mid-epoch save carries the curve up
    to the latest report (the pending points as one), so a watcher sees the run move."""
    monkeypatch.setattr(recorder, "LIVE_SAVE_SECONDS", 0.0)
    monkeypatch.setattr(engine, "REPORT_SECONDS", 0.0)  # a report every step
    preset = small_sweep(epochs=3, batch_sizes=[8], curve_points=10)
    events = run_sweep(prepare_sweep(preset, out_dir=tmp_path))
    next(events)  # SweepStarted: the plan is saved
    (plan_path,) = tmp_path.glob(f"*{PLAN_SUFFIX}")
    plan = load_plan(plan_path)
    assert [r.batch_size for r in plan.runs] == [8] and plan.pid == os.getpid()
    reports = []
    for event in events:
        if isinstance(event, StepStats):
            reports.append(event)
        if isinstance(event, SessionSaved) and len(reports) > 12 and not event.final:
            break
    saved = event.session
    assert saved.curve.samples[-1] == reports[-1].samples  # up to the latest report
    assert len(saved.curve.step) <= 11  # bounded: at most one provisional point beyond
    events.close()


@pytest.mark.parametrize(("seconds", "interval"), [(0.001, 2.0), (0.1, 10.0), (1.0, 60.0)])
def test_live_saves_are_spaced_by_what_a_save_costs(tmp_path, monkeypatch, seconds, interval):
    """A slow disk slows the view, not training: saves take under MAX_SAVE_SHARE (1 %) of the
    time, every LIVE_SAVE_SECONDS at most, and at least every heartbeat."""
    clock = iter([100.0, 100.0 + seconds])
    monkeypatch.setattr(recorder, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    rec = recorder.SessionRecorder(tmp_path)
    rec.session, rec.path = make_session(8, status="running"), tmp_path / "s.json"
    rec.save(0, final=False)
    assert rec.save_interval == pytest.approx(interval)


def many_sessions(folder: Path, sweeps: int, runs: int) -> None:
    """``sweeps`` finished sweeps of ``runs`` runs each, written as copies of one file."""
    folder.mkdir()
    base = make_session(32, points=400, epochs=20)
    for s in range(sweeps):
        for r in range(runs):
            config = base.config.model_copy(update={"group_id": f"sw{s}/{r}", "seed": r})
            created = base.created + timedelta(minutes=s, seconds=r)
            session = base.model_copy(update={"config": config, "created": created})
            save_model(session, folder / f"s{s:03}-r{r:02}.json")


@sync
async def test_a_folder_of_2000_sessions_shows_its_newest_sweep_in_seconds(tmp_path):
    folder = tmp_path / "big"
    many_sessions(folder, 100, 20)
    app = WatchApp(folder)
    started = time.monotonic()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: len(rows(app)) == 20)
        first_table = time.monotonic() - started
        await wait_until(pilot, lambda: app.watch_screen.view and not app.watch_screen.view.reading)
        assert app.watch_screen.view.sessions == 2000
    assert first_table < 15  # a busy 2-core machine; about 2 s when quiet


def test_watch_names_a_missing_folder(tmp_path, capsys):
    assert main(["watch", str(tmp_path / "nope")]) == 2
    assert "nope: folder not found" in capsys.readouterr().err


def test_without_file_events_the_watcher_polls(tmp_path, monkeypatch):
    """Where watchfiles cannot watch (no inotify, an unsupported file system), ticks go on."""
    import threading

    import watchfiles

    from tui_lab.app import watch

    def cannot_watch(*args, **kwargs):
        raise OSError("inotify watch limit reached")
        yield

    monkeypatch.setattr(watchfiles, "watch", cannot_watch)
    monkeypatch.setattr(watch, "TICK_SECONDS", 0.01)
    stop = threading.Event()
    ticks = watch.folder_changes(tmp_path, stop)
    next(ticks), next(ticks)
    stop.set()
    assert list(ticks) == []


@sync
async def test_compare_reads_the_folder_again_while_it_changes(tmp_path, monkeypatch):
    from tui_lab.app import watch

    monkeypatch.setattr(watch, "COMPARE_RELOAD_SECONDS", 0.3)
    folder = tmp_path / "runs"
    folder.mkdir()
    save_model(make_session(8), folder / "a.json")
    app = WatchApp(folder)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.ready)
        assert len(app.screen.sessions) == 1
        save_model(make_session(16, minutes=1), folder / "b.json")  # another process's new run
        await wait_until(pilot, lambda: len(app.screen.sessions) == 2, timeout=30)


def test_a_folder_that_goes_away_is_named_and_watched_again(tmp_path):
    from tui_lab.app.watch_folder import FolderWatcher

    folder = tmp_path / "runs"
    folder.mkdir()
    save_model(make_session(8), folder / "a.json")
    watcher = FolderWatcher(folder)
    assert watcher.look(print).sessions == 1
    moved = folder.rename(tmp_path / "elsewhere")
    view = watcher.look(print)
    assert "runs: cannot read: No such file or directory" in view.warnings[folder]
    moved.rename(folder)
    assert watcher.look(print).warnings == {}
