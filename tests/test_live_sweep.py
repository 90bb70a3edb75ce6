"""The Train screen's model of a sweep: the whole sweep's ETA, from made-up events (no clock:
the arithmetic is checked against figures worked out by hand)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from factories import make_session, run_config, seed_session, seeded_sweep_events

from tui_lab.app.live_sweep import LiveSweep
from tui_lab.run.estimate import (
    RECENT_RUNS,
    expected_epochs,
    finish_seconds,
    run_overhead,
    seconds_per_sample,
)
from tui_lab.run.events import (
    RunEnded,
    RunStarted,
    SessionSaved,
    StepStats,
    SweepEnded,
    SweepStarted,
)


def applied(events) -> LiveSweep:
    sweep = LiveSweep()
    for event in events:
        sweep.apply(event)
    return sweep


def step(index: int, samples: int, speed: float, epoch: int = 1) -> StepStats:
    return StepStats(index, epoch, samples // 8, 0.0, samples, 0.0, 0.3, 0.05, speed)


def test_tasks_start_longest_first_on_the_first_slot_to_free_up():
    assert finish_seconds([], [60, 30, 30], 2) == 60  # 60 on one slot, 30 + 30 on the other
    assert finish_seconds([50], [60, 30, 30], 2) == 90  # 60 now; 30 at 50 s; 30 at 60 s
    assert finish_seconds([10, 20, 30], [5], 1) == 30  # three running: none waits for a slot
    assert finish_seconds([], [], 4) == 0


def test_sweep_eta_counts_runs_to_come_and_the_runs_training_side_by_side():
    events, later = seeded_sweep_events()
    sweep = applied(events)
    assert sweep.slots == 2  # two runs were seen training at once
    assert sweep.eta_seconds() == pytest.approx(660)  # worked out in seeded_sweep_events
    sweep.slots = 3  # a third slot: the first run to come starts now, the second at 180 s
    assert sweep.eta_seconds() == pytest.approx(420)
    sweep.slots = 2
    for event in later:
        sweep.apply(event)
    assert sweep.eta_seconds() == pytest.approx(450)  # it falls as the runs get on
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
    sweep = applied([SweepStarted("s", configs, slots=2)])
    for index, speed in ((0, 40.0), (1, 80.0)):
        sweep.apply(RunStarted(index, configs[index], None, 1000, 200, 1))
        sweep.apply(step(index, 1, speed))
    # b=16 is a third of the way from 8 to 64 in log2: 0.025 s × (0.0125 / 0.025)^(1/3) per
    # sample; it starts when b=64 ends (3999 samples at 80/s) and ends after b=8 does
    b16 = 4000 * 0.025 * 0.5 ** (1 / 3)
    assert sweep.eta_seconds() == pytest.approx(3999 / 80 + b16)


def test_a_stack_of_seeds_is_one_task_at_the_stack_s_measured_cost():
    """Two b=8 LeNet seeds planned as one stacked task: on the CPU a stack of two costs 1.2×
    one seed alone (policy.CPU_STACK_COST), not 2×, and it holds one slot."""
    alone = run_config(8).updated(group_id="s/0")
    seeds = [run_config(8).updated(group_id="s/1", seed=seed, group_size=2) for seed in (0, 1)]
    configs = [alone, *seeds]
    sweep = applied(
        [
            SweepStarted("s", configs, slots=1, tasks=((0,), (1, 2))),
            RunStarted(0, alone, None, 1000, 200, 125),
            step(0, 2000, 10.0, epoch=3),  # 2000 of 4000 samples at 0.1 s each: 200 s left
        ]
    )
    assert sweep.eta_seconds() == pytest.approx(200 + 4000 * 0.1 * 1.2)
    sweep.tasks = []  # had the seeds trained separately: one after the other
    assert sweep.eta_seconds() == pytest.approx(200 + 2 * 4000 * 0.1)


def test_runs_that_stop_at_the_target_are_expected_to_take_what_their_siblings_took():
    """A seed that reached the target after 1 of 4 epochs: its sibling to come is costed at 1
    epoch, not the budget of 4; without stop_at_target the budget stands."""
    for stops, epochs in ((True, 1), (False, 4)):
        configs = [
            run_config(8).updated(group_id="s/0", seed=seed, group_size=2, stop_at_target=stops)
            for seed in (0, 1)
        ]
        sweep = applied(
            [
                SweepStarted("s", configs, slots=1),
                RunStarted(0, configs[0], None, 1000, 200, 125),
                step(0, 1000, 10.0),
                RunEnded(0, "completed", ""),
            ]
        )
        assert sweep.eta_seconds() == pytest.approx(epochs * 1000 * 0.1)


def test_beyond_the_measured_batch_sizes_a_step_costs_an_overhead_plus_a_share_per_sample():
    """Steps of 0.01 s + 1 ms a sample, measured at b=2, 4, 8: b=1024 costs about 1 ms a
    sample, not b=8's 2.25 ms (held flat, which made a sweep of small batches first predict its
    large batches twice as slow here, and far more on a faster step); inside, interpolated."""
    points = [(b, (0.01 + 0.001 * b) / b) for b in (2, 4, 8)]
    assert seconds_per_sample(1024, points) == pytest.approx((0.01 + 1.024) / 1024)
    assert seconds_per_sample(1, points) == pytest.approx(0.011)
    assert seconds_per_sample(4, points) == pytest.approx(0.0035)
    falling = [(2, 0.001), (8, 0.004)]  # a slower step at the larger batch: no overhead to fit
    assert seconds_per_sample(1024, falling) == pytest.approx(0.004)  # held flat


def test_each_run_to_come_also_pays_what_a_finished_run_took_beyond_training():
    """A finished seed spent 8 s of its wall time outside training and evaluation (building
    the model, the noise probe, saving the weights): its sibling to come is costed 8 s more."""
    configs = [run_config(8).updated(group_id="s/0", seed=seed, group_size=2) for seed in (0, 1)]
    done = make_session(8, epochs=1).model_copy(update={"config": configs[0]})
    work = sum(e.train_seconds + e.eval_seconds for e in done.epochs)

    def eta(heartbeat) -> float | None:
        saved = done.model_copy(update={"heartbeat": heartbeat})
        return applied(
            [
                SweepStarted("s", configs, slots=1),
                RunStarted(0, configs[0], None, 1000, 200, 125),
                SessionSaved(0, Path("0.json"), saved, final=True),
            ]
        ).eta_seconds()

    assert eta(done.created + timedelta(seconds=work + 8)) == pytest.approx(eta(None) + 8)


def test_the_overhead_is_the_latest_finished_runs_as_the_batch_and_the_load_change():
    """Two early runs spent 20 s beyond training, the eight since 2 s: the next is costed 2 s."""
    base = make_session(8, epochs=1)
    work = sum(e.train_seconds + e.eval_seconds for e in base.epochs)
    sessions = [
        base.model_copy(
            update={
                "created": base.created + timedelta(minutes=i),
                "heartbeat": base.created + timedelta(minutes=i, seconds=work + extra),
            }
        )
        for i, extra in enumerate([20, 20] + [2] * RECENT_RUNS)
    ]
    assert run_overhead(sessions[::-1]) == pytest.approx(2)
    assert run_overhead(sessions[:3]) == pytest.approx(20)


def test_epochs_to_the_target_grow_as_one_plus_b_over_the_critical_batch_beyond_the_finished():
    """A b=2 run reached the target in 3 epochs; with a measured B_crit of 58, b=64 is expected
    to take 3 × (1 + 64/58) / (1 + 2/58) epochs, b=1024 its budget (it cannot take more); with
    no B_crit measured, what b=2 took."""
    finished = [(run_config(2).updated(stop_at_target=True, epochs=40), 3)]
    config = run_config(64).updated(stop_at_target=True, epochs=40)
    assert expected_epochs(config, finished, 58) == pytest.approx(3 * (1 + 64 / 58) / (1 + 2 / 58))
    assert expected_epochs(config.updated(batch_size=1024), finished, 58) == 40
    assert expected_epochs(config, finished, None) == pytest.approx(3)
    assert expected_epochs(config.updated(stop_at_target=False), finished, 58) == 40
