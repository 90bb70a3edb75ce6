"""Seeds and lr grids: a preset asks for several of each, and every run is its own session."""

from __future__ import annotations

import plotext
import pytest
from factories import session_from_accuracies, small_sweep
from pydantic import ValidationError
from rich.console import Console

from tui_lab.analysis.seeds import Spread, decided, median_or_none
from tui_lab.report.scaling import render_report, scaling_groups
from tui_lab.report.scaling_text import analysis_lines
from tui_lab.report.seeds import sweep_view
from tui_lab.run.recorder import summarize
from tui_lab.run.sweep import plan_runs
from tui_lab.schema import TrainPreset


def test_seeds_and_replicates_train_each_configuration_once_per_seed():
    runs = plan_runs(small_sweep(seeds=[3, 7]), 160, "cpu", sweep_id="x")
    assert [(r.batch_size, r.seed) for r in runs] == [(32, 3), (32, 7), (160, 3), (160, 7)]
    assert [r.group_id for r in runs] == ["x/0", "x/0", "x/1", "x/1"]
    assert {r.group_size for r in runs} == {2}
    assert runs[1].label() == "sgd b=32 s=7" and runs[1].group_label() == "sgd b=32"
    replicated = plan_runs(small_sweep(seed=5, replicates=3), 160, "cpu")
    assert [r.seed for r in replicated[:3]] == [5, 6, 7]
    assert [r.seed for r in plan_runs(small_sweep(seed=4), 160, "cpu")] == [4, 4]


def test_an_lr_list_and_an_lr_grid_around_the_scaled_lr():
    listed = small_sweep(optimizer={"name": "sgd", "lr": [0.1, 0.2]}, batch_sizes=[32])
    assert [r.lr for r in plan_runs(listed, 160, "cpu")] == [0.1, 0.2]
    grid = small_sweep(
        lr_scaling={"rule": "linear", "base_batch_size": 32},
        lr_grid={"factors": [0.5, 2]},
        batch_sizes=[64],
        replicates=2,
    )
    runs = plan_runs(grid, 160, "cpu")
    # 0.05 scaled linearly to batch 64 is 0.1; the grid halves and doubles it, per seed.
    assert [r.lr for r in runs] == pytest.approx([0.05, 0.05, 0.2, 0.2])
    assert [r.lr_factor for r in runs] == [0.5, 0.5, 2, 2]
    assert len({r.group_id for r in runs}) == 2
    assert runs[2].label() == "sgd b=64 lr=0.2 s=0"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seeds": [1], "replicates": 2}, "either 'seeds' or 'replicates'"),
        ({"seeds": [1, 1]}, "a seed twice"),
        ({"protocol": "best-lr"}, "best-lr' needs an lr grid"),
        (
            {"optimizer": {"name": "sgd", "lr": [0.1, 0.2]}, "lr_grid": {"factors": [1, 2]}},
            "not both",
        ),
        ({"optimizer": {"name": "sgd", "lr": []}}, "optimizer.lr"),
        ({"stacking": "sometimes"}, "stacking"),
    ],
)
def test_inconsistent_seed_and_grid_settings_are_errors(change, message):
    with pytest.raises(ValidationError) as info:
        small_sweep(**change)
    text = str(info.value)
    assert message in text or any(
        ".".join(map(str, e["loc"])).startswith(message) for e in info.value.errors()
    )


def test_the_best_lr_protocol_with_a_grid_is_a_valid_preset():
    preset = TrainPreset.model_validate(
        {"protocol": "best-lr", "lr_grid": {}, "replicates": 4, "batch_sizes": [1, 8]}
    )
    assert preset.lr_factors() == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert preset.seed_list() == [0, 1, 2, 3]


def seeded(batch, accuracies, seconds=1.0, *, seed=0, lr=0.05, best_lr=False, seeds=4):
    """A session of one seed of a configuration (grouped by batch and lr)."""
    session = session_from_accuracies(batch, accuracies, seconds)
    session.config = session.config.updated(
        seed=seed,
        lr=lr,
        group_id=f"g{batch}-{lr}",
        group_size=seeds,
        protocol="best-lr" if best_lr else "fixed",
        lr_grid_size=3 if best_lr else 1,
    )
    session.summary = summarize(session)
    return session


def test_spread_statistics_and_the_welch_rule():
    a = Spread((0.984, 0.985, 0.983, 0.984))
    assert a.mean == pytest.approx(0.984) and a.sd == pytest.approx(0.000816, rel=1e-2)
    assert a.mean_text(".1%") == "98.4±0.1%"
    assert Spread((5, 4, 7)).median_text() == "5 (4–7)" and Spread((3, 3)).median_text() == "3"
    assert decided(a, Spread((0.974, 0.976, 0.972, 0.974)))
    assert not decided(a, Spread((0.984, 0.990, 0.978, 0.985)))
    assert decided(Spread((0.9,)), a) is None  # one seed: nothing to test
    assert median_or_none([3, None, 5]) == 5 and median_or_none([3, None, None]) is None


def test_the_table_shows_each_configuration_once_with_error_bars():
    sessions = [
        seeded(32, [0.5, 0.95, 0.97 + 0.002 * s], seconds=1.0 + 0.1 * s, seed=s) for s in range(4)
    ] + [seeded(128, [0.5, 0.6, 0.8 + 0.01 * s], seconds=0.5, seed=s) for s in range(4)]
    sessions[3].status = "diverged"
    console = Console(width=80, record=True)
    console.print(sweep_view(sessions))
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80
    lines = [line.strip() for line in text.splitlines()]
    row32 = next(line for line in lines if line.startswith("sgd") and " 32 " in line)
    assert "4/4" in row32 and "2 " in row32  # all seeds reached, in 2 epochs
    assert "97.3±0.3%★" in row32
    assert "0/4" in next(line for line in lines if " 128 " in line)
    assert "not completed: sgd b=32 s=3: diverged" in " ".join(text.split())


def test_verdicts_say_whether_they_are_decided():
    clear = [seeded(32, [0.95, 0.984 + 0.001 * (s % 2)], seed=s) for s in range(4)]
    clear += [seeded(128, [0.95, 0.974 + 0.001 * (s % 2)], 0.6, seed=s) for s in range(4)]
    text = " ".join(" ".join(analysis_lines(scaling_groups(clear)[0])).split())
    assert "optimal in final accuracy: batch 32 (98.4±0.1%), ahead of batch 128" in text
    assert "decided at 4 seeds" in text
    close = [seeded(32, [0.95, 0.98 + 0.01 * (s % 2)], seed=s) for s in range(4)]
    close += [seeded(128, [0.95, 0.979 + 0.01 * (s % 2)], 0.6, seed=s) for s in range(4)]
    text = " ".join(" ".join(analysis_lines(scaling_groups(close)[0])).split())
    assert "undecided between batch 32" in text and "and 128" in text and "at 4 seeds" in text


def test_best_lr_takes_per_batch_the_lr_fewest_steps_to_target():
    # batch 8: lr 0.1 reaches 90% in 1 epoch (median), 0.05 in 3; batch 64: only 0.2 reaches.
    sessions = []
    for s in range(3):
        sessions += [
            seeded(8, [0.5, 0.8, 0.92], seed=s, lr=0.05, best_lr=True, seeds=3),
            seeded(8, [0.91 if s < 2 else 0.5, 0.95, 0.95], seed=s, lr=0.1, best_lr=True, seeds=3),
            seeded(64, [0.5, 0.6, 0.7], seed=s, lr=0.1, best_lr=True, seeds=3),
            seeded(64, [0.5, 0.8, 0.93], seed=s, lr=0.2, best_lr=True, seeds=3),
        ]
    (group,) = scaling_groups(sessions)
    assert [(r.batch_size, r.lr, r.steps_to_target) for r in group.rows] == [
        (8, 0.1, 125),
        (64, 0.2, 45),
    ]
    assert len(group.tried) == 4 and group.fit is not None
    text = "\n".join(analysis_lines(group))
    assert "best lr per batch size" in text and "8: 0.1, 64: 0.2" in text
    chart = plotext.uncolorize(render_report(group, width=80, height=16)[0])
    assert "lr 0.1" in chart and "lr 0.2" in chart and "best lr beside each point" in chart


@pytest.mark.parametrize("name", ["shallue-digits", "lenet-mnist-seeds"])
def test_the_shipped_seed_presets_plan_best_lr_sweeps(name):
    from pathlib import Path

    from tui_lab.core.storage import load_preset

    preset = load_preset(Path(__file__).parent.parent / "presets" / f"{name}.json")
    runs = plan_runs(preset, 60_000, "cpu")
    assert {r.protocol for r in runs} == {"best-lr"} and {r.group_size for r in runs} == {4}
    assert all(r.stop_at_target for r in runs)
    per_batch = len(runs) // len(preset.batch_sizes)
    assert per_batch == 4 * len(preset.lr_factors())


def test_mean_and_sd_are_as_precise_as_the_spread_allows_so_cells_are_not_cut():
    from tui_lab.report.seeds import _mean_sd

    # Shallue's digits preset at 80 columns read "0.0778±0.01…" (the sd cut off).
    assert _mean_sd(Spread((0.0645, 0.0600, 0.0700, 0.0635))) == "0.065±0.004"
    assert (
        _mean_sd(Spread((0.0778, 0.0678, 0.0878))) == "0.078±0.010"
    )  # an sd starting with 1 keeps two digits
    assert _mean_sd(Spread((0.975, 0.7, 1.25))) == "1.0±0.3"
    assert _mean_sd(Spread((2.0, 2.0))) == "2.00±0.00"  # no spread: the mean's own digits
    assert _mean_sd(Spread((0.83,))) == "0.830"


def test_no_best_lr_is_named_where_no_seed_reached_the_target():
    sessions = []
    for s in range(2):
        sessions += [
            seeded(8, [0.5, 0.95], seed=s, lr=0.1, best_lr=True, seeds=2),
            seeded(64, [0.5, 0.6], seed=s, lr=0.1, best_lr=True, seeds=2),
            seeded(64, [0.5, 0.7], seed=s, lr=0.2, best_lr=True, seeds=2),
        ]
    (group,) = scaling_groups(sessions)
    text = "\n".join(analysis_lines(group))
    assert "8: 0.1, 64: none reached the target" in text
    assert "64: 0.2" not in text
