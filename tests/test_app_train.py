"""The Train screen and its worker: start from the keyboard, watch, skip, cancel, quit, compare."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from factories import (
    ENVIRONMENT,
    charts_drawn,
    crowded_sweep_events,
    hold_each_run,
    make_session,
    noise_point,
    seeded_sweep_events,
    sweep_drawn,
    wait_until,
)
from textual.pilot import Pilot
from textual.widgets import Footer, ProgressBar

from tui_lab.app.app import BslabApp
from tui_lab.app.screens.compare import CompareScreen
from tui_lab.app.screens.confirm import Confirm
from tui_lab.app.screens.train import TrainScreen
from tui_lab.app.widgets import run_progress
from tui_lab.app.widgets.curves import REDRAW_INTERVAL, CurvesChart, rgb_style
from tui_lab.app.widgets.noise_chart import NoiseScaleChart
from tui_lab.app.widgets.run_progress import SweepProgress
from tui_lab.app.widgets.run_table import RunTable
from tui_lab.app.worker import SweepEvents, SweepFinished
from tui_lab.report.comparison import format_bytes, noise_interval_text
from tui_lab.report.vocabulary import run_text
from tui_lab.run.events import RunEnded, RunStarted, SessionSaved, SweepEnded, SweepStarted
from tui_lab.schema import OptimizerConfig, Session, TrainPreset
from tui_lab.schema.analysis import MemoryPeak, NoiseScaleSettings
from tui_lab.schema.trajectory import TrajectorySettings


@pytest.fixture
def preset(tiny_preset: TrainPreset) -> TrainPreset:
    """The tiny sweep without the end-of-run trajectory sketch, which is not the app's to test."""
    return tiny_preset.model_copy(update={"trajectory": TrajectorySettings(enabled=False)})


def sync(test):
    """Run an async test body with asyncio.run (no asyncio plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))

    return wrapper


def saved_statuses(folder: Path) -> list[str]:
    return sorted(json.loads(p.read_text())["status"] for p in folder.glob("*.json"))


def table_text(app: BslabApp) -> str:
    table = app.train_screen.query_one(RunTable)
    return " ".join(str(cell) for row in range(table.row_count) for cell in table.get_row_at(row))


def held_preset(preset: TrainPreset, monkeypatch) -> TrainPreset:
    """Runs that stay in training, each held after its first epoch until the test stops it."""
    hold_each_run(monkeypatch)
    return preset.model_copy(update={"epochs": 3, "batch_sizes": [8, 32]})


@sync
async def test_start_from_the_keyboard_watch_it_train_then_compare(preset, tmp_path):
    out = tmp_path / "sessions [b]"  # a folder's name is data: shown as written, not as markup
    app = BslabApp(preset=preset, out_dir=out, worker_mode="thread")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, TrainScreen)
        await sweep_drawn(pilot)
        for name in ("#loss-chart", "#accuracy-chart"):
            chart = app.screen.query_one(name, CurvesChart)
            assert [s.label for s in chart.series() if s.label] == ["sgd b=32", "sgd b=full"]
        assert table_text(app).count("completed") == 2
        status = str(app.screen.query_one("#progress-status").render())
        assert "Sweep completed" in status and f"saved in {out}/" in status

        before = app.screen.query_one("#loss-chart", CurvesChart).x_axis
        await pilot.press("x")
        assert app.screen.query_one("#loss-chart", CurvesChart).x_axis != before

        await pilot.press("f4")
        assert isinstance(app.screen, CompareScreen)
        assert len(app.screen.selected_sessions) == 2
    assert saved_statuses(out) == ["completed", "completed"]


@sync
async def test_noise_scale_chart_critical_batch_and_peak_memory(preset, tmp_path):
    preset = preset.model_copy(update={"noise_scale": NoiseScaleSettings(time_share=1.0)})
    app = BslabApp(preset=preset, out_dir=tmp_path, worker_mode="thread")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await sweep_drawn(pilot)
        screen = app.train_screen
        noise = screen.query_one(NoiseScaleChart)
        assert not noise.display  # 80 columns: the accuracy chart has the place
        await pilot.press("b")
        assert noise.display and not screen.query_one("#accuracy-chart").display
        labels = lambda: [s.label.split(" lr=")[0] for s in noise.series() if s.label]  # noqa: E731
        await wait_until(pilot, lambda: labels() == ["sgd b=32", "sgd b=full"])
        series = noise.series()
        assert any(s.faint for s in series)  # the intervals' ends, faint around the estimates
        point = screen.sweep.runs[-1].noise_scale
        assert point is not None and point.b_low > 0
        line = str(screen.query_one("#critical-batch").render())
        assert f"critical batch size ≈ {noise_interval_text(point)}" in line
        assert f"sgd b=full at epoch {point.epoch:.1f}" in line  # where it was measured
        peaks = [run.peak_memory for run in screen.sweep.runs]
        assert all(peaks) and format_bytes(peaks[0].peak_bytes) in table_text(app)


@sync
async def test_skip_goes_on_and_cancel_stops_saving_runs_as_interrupted(
    preset, tmp_path, monkeypatch
):
    out = tmp_path / "sessions"
    preset = held_preset(preset, monkeypatch).model_copy(update={"batch_sizes": [8, 16, 32]})
    app = BslabApp(preset=preset, out_dir=out, worker_mode="thread")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        sweep = lambda: app.train_screen.sweep  # noqa: E731 (it is replaced on start)
        await wait_until(pilot, lambda: sweep().current == 0 and sweep().runs[0].samples > 0)
        await pilot.press("n")  # skip asks first; n again: no, keep training
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        assert isinstance(app.screen, TrainScreen) and sweep().current == 0
        await pilot.press("n", "y")
        await wait_until(pilot, lambda: sweep().current == 1 and sweep().runs[1].samples > 0)
        await pilot.press("c")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        status = lambda: str(app.screen.query_one("#progress-status").render())  # noqa: E731
        await sweep_drawn(pilot)
        assert [run.status for run in sweep().runs] == ["interrupted", "interrupted", "skipped"]
        assert "Sweep cancelled" in status() and "Preparing" not in status()
    assert saved_statuses(out) == ["interrupted", "interrupted"]


@sync
async def test_a_diverged_run_is_marked_and_the_sweep_goes_on(preset, tmp_path):
    preset = preset.model_copy(
        update={
            "optimizer": None,
            "optimizers": [OptimizerConfig(name="sgd", lr=1e9), OptimizerConfig(name="sgd")],
            "batch_sizes": ["full"],
        }
    )
    app = BslabApp(preset=preset, out_dir=tmp_path, worker_mode="thread")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await sweep_drawn(pilot)
        assert [run.status for run in app.train_screen.sweep.runs] == ["diverged", "completed"]
        assert "diverged" in table_text(app)


@sync
async def test_quit_while_training_asks_first_then_saves_the_run(preset, tmp_path, monkeypatch):
    app = BslabApp(preset=held_preset(preset, monkeypatch), out_dir=tmp_path, worker_mode="thread")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.train_screen.sweep.current == 0)
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        assert app.train_screen.running
        await pilot.press("ctrl+q", "y")
        await wait_until(pilot, lambda: not app.is_running)
    assert saved_statuses(tmp_path) == ["interrupted"]
    said = (
        f"Saved 1 run in {tmp_path}/ (1 interrupted, 1 not started); compare them with:\n"
        f"  bslab compare {tmp_path}"
    )
    assert app.train_screen.saved_text == said  # printed to the terminal once the app is gone


@sync
async def test_run_flag_trains_in_a_child_process(preset, tmp_path):
    """The default worker: what `bslab PRESET.json --run` does."""
    app = BslabApp(preset=preset, out_dir=tmp_path, start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.train_screen.sweep.ended)
        await wait_until(pilot, lambda: not app.train_screen.running)
        assert app.train_screen.runner is not None
        assert app.train_screen.runner.mode == "process"
        assert len(app.train_screen.sweep.sessions()) == 2
    assert saved_statuses(tmp_path) == ["completed", "completed"]


def instrumented(session: Session, b_simple: float, peak_mib: int) -> Session:
    """The run as measured: a noise-scale estimate per epoch (growing as the loss falls)."""
    points = [
        noise_point(epoch=e.epoch, b_simple=b_simple * e.epoch, samples=e.samples_seen)
        for e in session.epochs
    ]
    peak = MemoryPeak(peak_bytes=peak_mib * 2**20, source="process_peak_rss")
    return session.model_copy(update={"noise_scale": points, "peak_memory": peak})


def finished_sweep_app() -> BslabApp:
    """The Train screen after a sweep, from made-up events: the same picture on every machine."""
    sessions = [
        instrumented(make_session(8, rate=1.2, seconds_per_epoch=2.0), 20, 310),
        instrumented(make_session(64, rate=0.8, seconds_per_epoch=0.6), 45, 330),
        make_session(1000, rate=0.3, seconds_per_epoch=0.3, status="diverged"),
    ]
    events = [SweepStarted("demo", [s.config for s in sessions])]
    for index, session in enumerate(sessions):
        events.append(RunStarted(index, session.config, session.environment, 1000, 200, 1))
        events.append(SessionSaved(index, Path(f"{index}.json"), session, final=True))
    events.append(SweepEnded(False, []))
    app = BslabApp(out_dir=Path("sessions"), worker_mode="thread")

    async def feed(pilot: Pilot) -> None:
        await pilot.press("f3")
        app.train_screen.post_message(SweepEvents(events))
        app.train_screen.post_message(SweepFinished())
        await sweep_drawn(pilot)  # a fixed pause raced the drawing on a busy machine
        app.clear_notifications()
        await pilot.pause()

    app.feed = feed  # type: ignore[attr-defined]
    return app


def test_train_layout_80x24(snap_compare):
    app = finished_sweep_app()
    assert snap_compare(app, terminal_size=(80, 24), run_before=app.feed)


def test_train_layout_200x50(snap_compare):
    app = finished_sweep_app()
    assert snap_compare(app, terminal_size=(200, 50), run_before=app.feed)


async def visit_every_screen(pilot: Pilot) -> None:
    """Setup, Compare, the paraboloid lab, Help, then back to Train: each screen's styles load."""
    for key in ("f2", "f4", "f5", "f1", "escape", "f3"):
        await pilot.press(key)
        await pilot.pause(0.2)
    await charts_drawn(pilot)
    pilot.app.clear_notifications()
    await pilot.pause()


@sync
async def test_other_screens_styles_leave_train_alone(tmp_path, monkeypatch):
    """Compare stacks its charts at 80 columns; Train keeps loss and accuracy side by side."""
    monkeypatch.chdir(tmp_path)
    app = finished_sweep_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.feed(pilot)
        await visit_every_screen(pilot)
        assert isinstance(app.screen, TrainScreen)
        loss = app.screen.query_one("#loss-chart").region
        accuracy = app.screen.query_one("#accuracy-chart").region
        assert loss.y == accuracy.y and loss.right <= accuracy.x
        assert loss.height >= 8


def test_train_layout_after_visiting_every_screen_80x24(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = finished_sweep_app()

    async def visit(pilot: Pilot) -> None:
        await app.feed(pilot)
        await visit_every_screen(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=visit)


def eta_seconds(app: BslabApp) -> int:
    """The whole sweep's ETA as the progress area shows it, ``ETA ~m:ss``, in seconds."""
    text = str(app.train_screen.query_one("#sweep-eta").render())
    assert text.startswith("ETA ~"), text
    minutes, seconds = text.removeprefix("ETA ~").split(":")
    return int(minutes) * 60 + int(seconds)


async def feed_seeded_sweep(pilot: Pilot) -> list:
    """The Train screen in the middle of a sweep with seeds (see ``seeded_sweep_events``)."""
    events, later = seeded_sweep_events()
    await pilot.press("f3")
    screen = pilot.app.train_screen
    screen.post_message(SweepEvents(events))
    await wait_until(pilot, lambda: len(screen.sweep.runs) == 6 and not screen.redraw_pending)
    await charts_drawn(pilot)
    return later


@sync
async def test_seeds_draw_as_each_configurations_mean_and_band_and_e_shows_every_seed(tmp_path):
    app = BslabApp(out_dir=tmp_path, worker_mode="thread")
    async with app.run_test(size=(100, 30)) as pilot:
        await feed_seeded_sweep(pilot)
        screen = app.train_screen
        chart = screen.query_one("#accuracy-chart", CurvesChart)
        series = chart.series()
        lines = [s for s in series if s.label]
        assert [s.label for s in lines] == ["sgd b=8 mean of 3 seeds", "sgd b=64 mean of 1/3 seeds"]
        b8 = lines[0]
        low, high = (s for s in series if s.faint and s.color == b8.color)
        seeds = [run.session for run in screen.sweep.runs[:3]]
        first = [100 * s.epochs[0].val_accuracy for s in seeds]
        last = [100 * s.epochs[-1].val_accuracy for s in seeds[:2]]  # seed 2 is at epoch 2
        assert b8.x == [1, 2, 3, 4]
        assert b8.y[0] == pytest.approx(sum(first) / 3) and low.y[0] == pytest.approx(min(first))
        assert b8.y[-1] == pytest.approx(sum(last) / 2) and high.y[-1] == pytest.approx(max(last))
        # One colour per configuration: its mean, its band and every seed's row in the table.
        table = screen.query_one(RunTable)
        swatches = [table.get_row_at(row)[0].spans[0].style for row in range(4)]
        assert swatches == [rgb_style(b8.color)] * 3 + [rgb_style(lines[1].color)]
        assert "seeds: mean, min–max band (e: each)" in str(chart.border_title)
        assert str(chart.border_subtitle) == "4 runs: colours as in the table"  # none left out

        await pilot.press("e")
        await pilot.pause(REDRAW_INTERVAL + 0.1)
        lines = [s for s in chart.series() if s.label]
        labels = ["sgd b=8 s=0", "sgd b=8 s=1", "sgd b=8 s=2", "sgd b=64 s=0"]
        assert [s.label for s in lines] == labels
        assert {s.color for s in lines[:3]} == {b8.color}
        assert [len(s.x) for s in lines[:3]] == [4, 4, 2]  # each seed as far as it got
        assert "e: means" in str(chart.border_title)
        assert not screen.query_one("#loss-chart", CurvesChart).by_group  # both charts switch

        await pilot.press("e")
        await pilot.pause(REDRAW_INTERVAL + 0.1)
        assert next(s.label for s in chart.series() if s.label) == "sgd b=8 mean of 3 seeds"


@sync
async def test_the_whole_sweeps_eta_counts_runs_to_come_and_falls_as_they_train(
    tmp_path, monkeypatch
):
    clock = SimpleNamespace(monotonic=lambda: 1000.0)  # the widget's clock, moved by hand
    monkeypatch.setattr(run_progress, "time", clock)
    app = BslabApp(out_dir=tmp_path, worker_mode="thread")
    async with app.run_test(size=(80, 24)) as pilot:
        later = await feed_seeded_sweep(pilot)
        screen = app.train_screen
        assert eta_seconds(app) == 660  # by hand (seeded_sweep_events): runs to come, 2 slots
        screen.post_message(SweepEvents(later))
        await wait_until(pilot, lambda: eta_seconds(app) == 450)  # the running runs got on
        clock.monotonic = lambda: 1030.0
        screen.query_one(SweepProgress)._count_down()  # what its once-a-second timer does
        assert eta_seconds(app) == 420  # it counts down between reports
        screen.post_message(SweepEvents([SweepEnded(False, [])]))
        eta_line = screen.query_one("#sweep-eta")
        await wait_until(pilot, lambda: str(eta_line.render()) == "")  # nothing left to wait for


@sync
async def test_while_the_running_runs_have_no_estimate_the_line_shows_the_last_measured_one(
    tmp_path,
):
    app = BslabApp(out_dir=tmp_path, worker_mode="thread")
    async with app.run_test(size=(80, 24)) as pilot:
        await feed_seeded_sweep(pilot)
        screen = app.train_screen
        line = lambda: str(screen.query_one("#critical-batch").render())  # noqa: E731
        assert "not measured yet" in line()  # nothing measured anywhere
        screen.sweep.runs[1].noise.append(noise_point(3.0, 120.0))  # a finished seed's value
        screen._redraw()
        assert "≈ 120 (96–150)" in line() and "sgd b=8 s=1 at epoch 3.0" in line()


def crowded_app() -> BslabApp:
    """The Train screen of a 120-run sweep with run 0 a third through and run 1 just started."""
    app = BslabApp(out_dir=Path("sessions"), worker_mode="thread")

    async def feed(pilot: Pilot) -> None:
        await pilot.press("f3")
        screen = app.train_screen
        screen.post_message(SweepEvents(crowded_sweep_events()))
        table = screen.query_one(RunTable)
        await wait_until(pilot, lambda: table.row_count == 120 and not screen.redraw_pending)
        await charts_drawn(pilot)

    app.feed = feed  # type: ignore[attr-defined]
    return app


@sync
async def test_a_crowded_sweep_at_80x24_keeps_its_header_and_drops_columns_whole():
    app = crowded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.feed(pilot)
        screen = app.train_screen
        table = screen.query_one(RunTable)
        table.focus()
        table.move_cursor(row=117)
        await pilot.press("down", "down")  # down to the last run: the screen stays put
        await pilot.pause(0.2)
        assert table.cursor_row == 119 and screen.max_scroll_y == 0
        assert screen.query_one("#progress-status").region.y == 0
        assert screen.query_one(Footer).region.bottom == 24
        status = str(screen.query_one("#progress-status").render())
        assert status.startswith("Run 1/120 sgd b=2 lr=7.81e-4 s=0  epoch 15/40")  # lr once
        assert screen.query_one("#run-bar", ProgressBar).percentage == pytest.approx(0.35)  # run 0
        # the labels whole, no sideways scroll; lr (in the labels) and peak mem make room
        assert table.hidden == ["lr", "peak mem"] and table.max_scroll_x == 0
        assert "sgd b=1024 lr=1.6 s=3" in table_text(app)
        first = table.columns[table.ordered_columns[0].key]
        assert first.width == len("━ sgd b=16 lr=6.25e-3 s=3")  # the longest label, whole


@sync
async def test_the_run_table_keeps_the_run_in_training_in_view_until_the_user_takes_it():
    """Run 60 of 120 training: its row is in view at 80×24 (the first rows are long done);
    once the user focuses the table and goes back to the top, the table stays where they put it."""
    app = crowded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.feed(pilot)
        screen = app.train_screen
        table = screen.query_one(RunTable)
        configs = [run.config for run in screen.sweep.runs]
        ended = [RunEnded(i, "completed", "") for i in range(60)]
        started = RunStarted(60, configs[60], ENVIRONMENT, 1437, 360, 719)
        screen.post_message(SweepEvents([*ended, started]))
        await wait_until(pilot, lambda: screen.sweep.runs[60].status == "running")
        await wait_until(pilot, lambda: not screen.redraw_pending)
        await pilot.pause()
        rows_seen = table.size.height - table.header_height
        assert table.scroll_y <= 60 < table.scroll_y + rows_seen
        table.focus()
        await pilot.pause()
        table.move_cursor(row=0)
        await pilot.pause()
        screen._redraw()
        await pilot.pause()
        assert table.has_focus and table.scroll_y == 0  # the user's choice stands


def test_the_status_line_says_what_the_sweep_is_doing_between_runs_and_how_it_ended():
    """Never "Preparing…" once runs have started: between runs, after the last one, at the end."""
    configs = [make_session(8).config, make_session(64).config]
    screen = TrainScreen()
    request = SimpleNamespace(out_dir=Path("out"), preset=SimpleNamespace(name="pair"))
    screen.runner = SimpleNamespace(request=request, running=True)  # type: ignore[assignment]
    said = [screen.headline]
    for event in (
        SweepStarted("pair", configs),
        RunStarted(0, configs[0], ENVIRONMENT, 1000, 200, 125),
        RunEnded(0, "completed", ""),
        RunStarted(1, configs[1], ENVIRONMENT, 1000, 200, 16),
        RunEnded(1, "diverged", "loss became nan"),
        SweepEnded(False, []),
    ):
        screen.sweep.apply(event)
        said.append(screen.headline)
    assert said[0] == "Preparing pair: loading data, building runs…"
    assert said[1] == "Starting the first of 2 runs…"
    assert said[3] == "1/2 runs ended: starting the next…"
    assert said[5] == "All 2 runs ended: finishing the sweep…"
    assert str(said[6]) == "Sweep completed: 0 runs saved in out/ · F4 compares them"
    screen.sweep.cancelled = True
    assert str(screen.headline).startswith("Sweep cancelled")


def test_a_run_in_the_progress_line_names_its_lr_in_significant_digits_and_its_seed():
    config = make_session(8).config.model_copy(update={"lr": 0.000625, "seed": 3})
    assert run_text(config) == "sgd b=8 lr=6.25e-4 s=3"  # one seed: the label alone has none


def test_the_progress_line_leaves_out_what_does_not_fit_whole():
    parts = ["[b]Run 5/120[/b] sgd b=2", "epoch 3/40", "acc 97.2%", "1,899 samples/s"]
    assert run_progress.fitting(parts, 40) == "[b]Run 5/120[/b] sgd b=2  epoch 3/40  acc 97.2%"
    assert run_progress.fitting(parts, 10) == "[b]Run 5/120[/b] sgd b=2"  # the run, whatever
