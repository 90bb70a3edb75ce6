"""Steps-to-target fit (S_min, E_min, B_crit) and the time- and accuracy-optimal batch sizes."""

from datetime import datetime

import pytest

from tui_lab.analysis.scaling import (
    ScalingRow,
    fit_scaling,
    perfect_scaling_line,
    rows_from_sessions,
    time_optimal_batch,
)
from tui_lab.schema import Environment, LrScaling, OptimizerConfig, RunConfig, Session, Summary

S_MIN, E_MIN = 200.0, 12_800.0  # B_crit = 64


def row(batch, steps, seconds=None, accuracy=None) -> ScalingRow:
    return ScalingRow(
        batch_size=batch,
        steps_to_target=steps,
        samples_to_target=None if steps is None else batch * steps,
        seconds_to_target=seconds,
        seconds_per_epoch=None,
        final_accuracy=accuracy,
    )


def mccandlish_steps(batch: int) -> float:
    """Solve (S/S_min - 1)(E/E_min - 1) = 1 with E = B S for S."""
    return S_MIN * (1 + E_MIN / (S_MIN * batch))


def test_recovers_s_min_e_min_and_the_critical_batch_from_exact_data():
    rows = [row(b, mccandlish_steps(b)) for b in (4, 16, 64, 256, 1024)]
    fit = fit_scaling(rows)
    assert fit is not None
    assert fit.s_min == pytest.approx(S_MIN, rel=1e-6)
    assert fit.e_min == pytest.approx(E_MIN, rel=1e-6)
    assert fit.b_crit == pytest.approx(64, rel=1e-6)
    assert fit.r2 == pytest.approx(1.0)
    s, e = fit.steps(64), fit.samples(64)
    assert (s / S_MIN - 1) * (e / E_MIN - 1) == pytest.approx(1.0)


def test_recovers_them_within_ten_percent_from_noisy_integer_step_counts():
    noise = [1.07, 0.95, 1.04, 0.96, 1.05, 0.97]
    batches = (2, 8, 32, 128, 512, 2048)
    rows = [row(b, round(mccandlish_steps(b) * n)) for b, n in zip(batches, noise, strict=True)]
    fit = fit_scaling(rows)
    assert fit is not None and fit.b_crit is not None
    assert fit.s_min == pytest.approx(S_MIN, rel=0.1)
    assert fit.e_min == pytest.approx(E_MIN, rel=0.1)
    assert fit.b_crit == pytest.approx(64, rel=0.15)
    assert fit.r2 > 0.99


def test_runs_that_never_reached_the_target_are_left_out_but_reported():
    reached = [row(b, mccandlish_steps(b)) for b in (8, 64, 512)]
    fit = fit_scaling([*reached, row(1, None), row(4096, None)])
    assert fit is not None
    assert fit == fit_scaling(reached).model_copy(update={"unreached_batch_sizes": [1, 4096]})
    assert fit.batch_sizes == [8, 64, 512]


def test_no_fit_from_fewer_than_two_batch_sizes_that_reached_the_target():
    assert fit_scaling([row(32, 500), row(32, 520), row(64, None)]) is None
    assert fit_scaling([]) is None


def test_perfect_scaling_everywhere_means_no_critical_batch():
    fit = fit_scaling([row(b, 6400 / b) for b in (8, 16, 32)])
    assert fit is not None and fit.s_min == pytest.approx(0, abs=1e-6) and fit.b_crit is None
    # A plateau (steps independent of batch) is the other extreme: B_crit = 0.
    plateau = fit_scaling([row(b, 300) for b in (8, 16, 32)])
    assert plateau is not None and plateau.b_crit == pytest.approx(0, abs=1e-9)


def test_perfect_scaling_line_halves_steps_per_doubling_from_the_smallest_reached_batch():
    rows = [row(4, None), row(16, 1000), row(64, 400)]
    assert perfect_scaling_line(rows) == [(4, 4000.0), (16, 1000.0), (64, 250.0)]
    assert perfect_scaling_line([row(4, None)]) == []


def test_time_and_accuracy_optima_can_be_different_batch_sizes():
    rows = [
        row(8, None, None, 0.93),  # too small: never reached the target in the budget
        row(32, 900, 40.0, 0.985),
        row(128, 400, 25.0, 0.981),
        row(512, 300, 31.0, 0.975),
    ]
    optima = time_optimal_batch(rows)
    assert (optima.fastest_batch_size, optima.seconds_to_target) == (128, 25.0)
    assert (optima.most_accurate_batch_size, optima.final_accuracy) == (32, 0.985)
    nobody = time_optimal_batch([row(8, None, None, 0.5)])
    assert nobody.fastest_batch_size is None and nobody.most_accurate_batch_size == 8


def test_rows_come_from_saved_sessions_including_unfinished_ones():
    def session(batch: int, summary: Summary | None) -> Session:
        config = RunConfig(
            preset_name="t", dataset="digits", model="mlp", optimizer=OptimizerConfig(name="sgd"),
            batch_size=batch, batch_size_requested=batch, lr=0.05, lr_scaling=LrScaling(),
            epochs=5, target_accuracy=0.9, seed=0, device="cpu",
        )  # fmt: skip
        environment = Environment(
            python="3", torch="2", platform="linux", host="h", device="cpu", device_name="cpu",
            threads=1, bslab="0",
        )  # fmt: skip
        return Session(
            id=f"b{batch}", created=datetime(2026, 1, 1), config=config, environment=environment,
            n_train=1000, n_val=100, steps_per_epoch=-(-1000 // batch), summary=summary,
        )  # fmt: skip

    summary = Summary(
        epochs_run=5, seconds_per_epoch=2.0, samples_per_second=500.0, train_seconds=10.0,
        epochs_to_target=3, steps_to_target=96, samples_to_target=3000, seconds_to_target=6.0,
        best_accuracy=0.95, best_epoch=5, final_accuracy=0.95, final_val_loss=0.2,
    )  # fmt: skip
    done, crashed = rows_from_sessions([session(32, summary), session(8, None)])
    assert (done.batch_size, done.steps_to_target, done.seconds_to_target) == (32, 96, 6.0)
    assert done.label == "sgd b=32" and done.reached_target
    assert crashed.batch_size == 8 and not crashed.reached_target
