"""The Train screen's model of a sweep: the whole sweep's ETA, from made-up events."""

from __future__ import annotations

import pytest
from factories import seed_session, seeded_sweep_events

from tui_lab.app.live_sweep import LiveSweep
from tui_lab.run.events import RunStarted, StepStats, SweepEnded, SweepStarted


def applied(events) -> LiveSweep:
    sweep = LiveSweep()
    for event in events:
        sweep.apply(event)
    return sweep


def test_sweep_eta_counts_runs_to_come_and_the_runs_training_side_by_side():
    events, later = seeded_sweep_events()
    sweep = applied(events)
    assert sweep.slots == 2  # two runs were seen training at once
    assert sweep.eta_seconds() == pytest.approx(540)  # worked out in seeded_sweep_events
    for event in later:
        sweep.apply(event)
    assert sweep.eta_seconds() == pytest.approx(405)  # it falls as the runs get on
    sweep.slots = 1  # one at a time: the work left, run after run
    assert sweep.eta_seconds() == pytest.approx(210 + 120 + 480)
    sweep.apply(SweepEnded(False, []))
    assert sweep.eta_seconds() is None  # nothing left to estimate


def test_no_eta_until_a_run_has_a_speed_then_never_negative():
    config = seed_session(8, 0).config
    sweep = applied([SweepStarted("s", [config]), RunStarted(0, config, None, 1000, 200, 125)])
    assert sweep.eta_seconds() is None  # the screen says "estimating…"
    sweep.apply(StepStats(0, 4, 500, 1.0, 4000, 10.0, 0.3, 0.05, 400.0))
    assert sweep.eta_seconds() == 0  # every sample done: nothing left, and not below zero


def test_a_batch_size_not_measured_yet_is_costed_between_its_neighbours():
    """Per-sample cost falls with the batch: b=16's lies between b=8's and b=64's."""
    configs = [seed_session(b, 0).config.updated(group_id=f"b{b}") for b in (8, 64, 16)]
    sweep = applied([SweepStarted("s", configs)])
    for index, speed in ((0, 10.0), (1, 80.0)):
        sweep.apply(RunStarted(index, configs[index], None, 1000, 200, 1))
        sweep.apply(StepStats(index, 1, 1, 0.0, 1, 0.0, 0.3, 0.05, speed))
    sweep.slots = 1
    b8, b64 = 3999 / 10, 3999 / 80  # the running runs' own time left
    # b=16 is a third of the way from 8 to 64 in log2: 0.1 s × (0.0125 / 0.1)^(1/3) per sample
    assert sweep.eta_seconds() == pytest.approx(b8 + b64 + 4000 * 0.05)
