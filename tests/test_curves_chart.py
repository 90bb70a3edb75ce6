"""The live curves chart: fair x-axes, log loss, stable colours, few points, throttled redraws."""

from __future__ import annotations

import asyncio
import math
import time
from itertools import pairwise

import pytest
from factories import make_session
from textual.app import App, ComposeResult

from tui_lab.app.widgets.curves import (
    MAX_CURVES,
    MAX_POINTS,
    REDRAW_INTERVAL,
    CurvesChart,
    cycle_focus,
    downsample,
    focus_choices,
    next_x_axis,
    seed_band,
    smooth,
)
from tui_lab.report.plotting import log_ticks
from tui_lab.schema.common import lr_text

SWEEP = [
    make_session(1, rate=0.3, seconds_per_epoch=9.0, status="diverged"),
    make_session(32, rate=1.0, seconds_per_epoch=1.0),
    make_session(256, rate=0.6, seconds_per_epoch=0.4),
]


class ChartApp(App):
    def compose(self) -> ComposeResult:
        yield CurvesChart("loss", id="loss")
        yield CurvesChart("accuracy", id="accuracy")


def test_downsample_keeps_both_ends_and_bounds_the_points():
    xs = list(range(5000))
    small_x, small_y = downsample(xs, xs, 300)
    assert len(small_x) == 300
    assert (small_x[0], small_x[-1]) == (0, 4999)
    assert small_y == small_x
    assert downsample([1, 2], [3, 4], 300) == ([1, 2], [3, 4])


def test_smoothing_follows_the_trend_and_calms_the_noise():
    noisy = [1 + (0.5 if i % 2 else -0.5) for i in range(400)]
    smoothed = smooth(noisy)
    assert smoothed[0] == pytest.approx(noisy[0])  # bias-corrected: no lag towards zero
    assert max(smoothed[100:]) - min(smoothed[100:]) < 0.2


def test_log_ticks_are_labelled_with_real_losses():
    positions, labels = log_ticks(math.log10(0.02), math.log10(2.5), most=8)
    assert labels[0] == "0.02" and "1" in labels and "0.1" in labels
    assert positions == pytest.approx([math.log10(float(label)) for label in labels])


def test_x_axis_cycles_through_the_fair_axes():
    assert [next_x_axis("epoch"), next_x_axis("samples"), next_x_axis("seconds")] == [
        "samples",
        "seconds",
        "epoch",
    ]


def test_chart_overlays_runs_with_labels_colours_and_bounded_points():
    asyncio.run(_chart_overlays_runs_with_labels_colours_and_bounded_points())


async def _chart_overlays_runs_with_labels_colours_and_bounded_points():
    long_run = make_session(8, points=5000)
    app = ChartApp()
    async with app.run_test(size=(100, 30)) as pilot:
        loss = app.query_one("#loss", CurvesChart)
        loss.update_sessions([*SWEEP, long_run])
        await pilot.pause(REDRAW_INTERVAL + 0.1)
        series = loss.series()
        lines = [s for s in series if not s.faint]
        assert [s.label for s in lines] == [
            "sgd b=1 (diverged)",
            "sgd b=32",
            "sgd b=256",
            "sgd b=8",
        ]
        assert len({s.color for s in lines}) == 4
        assert all(len(s.x) <= MAX_POINTS for s in series)
        assert "sgd b=1 (diverged)" in str(loss.border_subtitle)
        # Loss is drawn as log10: 2.3 at the start is about 0.36.
        assert lines[1].y[0] == pytest.approx(math.log10(2.3), abs=0.3)

        colour_of_b32 = lines[1].color
        loss.update_sessions(SWEEP[1:])
        await pilot.pause(REDRAW_INTERVAL + 0.1)
        assert next(s for s in loss.series() if s.label == "sgd b=32").color == colour_of_b32

        loss.show_raw = False
        assert not any(s.faint for s in loss.series())


def test_accuracy_on_the_seconds_axis_is_cumulative_training_time():
    asyncio.run(_accuracy_on_the_seconds_axis_is_cumulative_training_time())


async def _accuracy_on_the_seconds_axis_is_cumulative_training_time():
    app = ChartApp()
    async with app.run_test(size=(100, 30)) as pilot:
        accuracy = app.query_one("#accuracy", CurvesChart)
        accuracy.update_sessions([SWEEP[0]])
        accuracy.x_axis = "seconds"
        await pilot.pause(REDRAW_INTERVAL + 0.1)
        (line,) = accuracy.series()
        assert line.x == [9.0, 18.0, 27.0, 36.0]
        assert line.y[-1] == pytest.approx(100 * SWEEP[0].epochs[-1].val_accuracy)
        assert "training seconds" in str(accuracy.border_title)


def test_redraws_are_throttled_and_the_last_update_wins(monkeypatch):
    asyncio.run(_redraws_are_throttled_and_the_last_update_wins(monkeypatch))


async def _redraws_are_throttled_and_the_last_update_wins(monkeypatch):
    app = ChartApp()
    async with app.run_test(size=(100, 30)) as pilot:
        loss = app.query_one("#loss", CurvesChart)
        await pilot.pause(REDRAW_INTERVAL + 0.1)
        draws: list[float] = []
        draw = loss._draw
        monkeypatch.setattr(loss, "_draw", lambda: (draws.append(time.monotonic()), draw()))
        updates = [make_session(epochs=epochs) for epochs in range(1, 41)]
        for session in updates:  # as fast as a quick training run sends them
            loss.update_sessions([session])
            await pilot.pause(0.01)
        await pilot.pause(REDRAW_INTERVAL + 0.2)
        gaps = [later - earlier for earlier, later in pairwise(draws)]
        # However slow the machine (each pause above may take far longer than asked), draws
        # never come closer than the interval: updates in between are merged into the next.
        assert len(draws) >= 2
        assert min(gaps) >= REDRAW_INTERVAL * 0.8  # throttled
        assert max(loss.series()[-1].x) == pytest.approx(40)


def test_seed_band_is_mean_min_and_max_over_the_seeds_that_reach_each_x():
    x, mean, low, high = seed_band([([0, 2], [0, 2]), ([0, 1, 2, 3], [2, 3, 4, 5])])
    assert x == [0, 1, 2, 3]
    assert mean == [1, 2, 3, 5] and low == [0, 1, 2, 5] and high == [2, 3, 4, 5]


def test_seeds_of_a_configuration_draw_as_their_mean_and_band_and_e_shows_each():
    asyncio.run(_seeds_draw_as_mean_and_band())


async def _seeds_draw_as_mean_and_band():
    seeds = []
    for seed, rate in enumerate([0.8, 1.0, 1.2]):
        session = make_session(32, rate=rate, preset=f"s{seed}")
        session.config = session.config.updated(seed=seed, group_id="g", group_size=3)
        seeds.append(session)
    app = ChartApp()
    async with app.run_test(size=(100, 30)) as pilot:
        accuracy = app.query_one("#accuracy", CurvesChart)
        accuracy.update_sessions([*seeds, SWEEP[2]])
        await pilot.pause(REDRAW_INTERVAL + 0.1)
        series = accuracy.series()
        lines = [s for s in series if not s.faint]
        assert [s.label for s in lines] == ["sgd b=32 mean of 3 seeds", "sgd b=256"]
        low, high = (s for s in series if s.faint)
        assert low.y[0] < lines[0].y[0] < high.y[0]
        assert "min–max band (e: each)" in str(accuracy.border_title)
        accuracy.by_group = False
        labels = [s.label for s in accuracy.series()]
        assert labels == ["sgd b=32 s=0", "sgd b=32 s=1", "sgd b=32 s=2", "sgd b=256"]


def test_a_crowded_chart_always_draws_the_run_in_progress_and_f_focuses_it():
    asyncio.run(_crowded_chart())


async def _crowded_chart():
    """40 batch sizes (a sweep of 100+ runs with seeds is as crowded): only 24 lines are drawn,
    the running run among them though it comes last; f narrows to one batch size at a time."""
    sessions = [make_session(b, points=20) for b in range(1, 40)]
    sessions.append(make_session(64, points=20, status="running"))
    app = ChartApp()
    async with app.run_test(size=(80, 24)) as pilot:
        loss = app.query_one("#loss", CurvesChart)
        loss.update_sessions(sessions)
        await pilot.pause(REDRAW_INTERVAL + 0.1)
        labels = [s.label for s in loss.series() if not s.faint]
        assert len(labels) == MAX_CURVES
        assert labels[-1] == "sgd b=64" and labels[0] == "sgd b=1"  # b=64 is running
        assert "24 of 40 configurations, running ones first" in str(loss.border_subtitle)
        choices = focus_choices(sessions)
        assert choices[:3] == ["b=1", "b=2", "b=3"] and "sgd" not in choices  # one optimizer
        assert cycle_focus(app.query(CurvesChart), sessions) == "charts: only b=1 (f: next)"
        await pilot.pause(REDRAW_INTERVAL + 0.1)
        assert [s.label for s in loss.series() if not s.faint] == ["sgd b=1"]
        assert "only b=1" in str(loss.border_title)
        for _ in range(len(choices)):
            said = cycle_focus(app.query(CurvesChart), sessions)
        assert said == "charts: every run" and loss.only == ""
        assert cycle_focus(app.query(CurvesChart), sessions[:1]) is None  # nothing to narrow


def test_learning_rates_keep_their_significant_digits():
    assert [lr_text(v) for v in (0.1, 0.05, 0.0125, 0.00625, 0.000625, 1e-4, 0.0)] == [
        "0.1",
        "0.05",
        "0.0125",
        "6.25e-3",
        "6.25e-4",
        "1e-4",
        "0",
    ]
