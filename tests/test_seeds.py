"""Seeds and lr grids: a preset asks for several of each, and every run is its own session."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.factories import small_sweep
from tui_lab.schema import TrainPreset
from tui_lab.sweep import plan_runs


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
