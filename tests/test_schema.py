"""Presets as users write them by hand: defaults, strictness, and the exported JSON Schema."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from factories import session_from_accuracies
from pydantic import ValidationError

from tui_lab.errors import BadInput, from_validation_error, printable
from tui_lab.schema import PRESET_ADAPTER, SESSION_ADAPTER, OptimizerConfig, TrainPreset

QUICK = {
    "schema_version": 1,
    "name": "quick",
    "dataset": "digits",
    "model": "lenet5",
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "batch_sizes": [1, 32, "full"],
    "epochs": 10,
    "target_accuracy": 0.95,
    "device": "cpu",
    "seed": 0,
}
RPROP = {
    "schema_version": 1,
    "name": "rprop",
    "dataset": "mnist",
    "data_dir": "data",
    "model": "lenet5",
    "optimizers": [{"name": "rprop", "lr": 0.001}, {"name": "rmsprop", "lr": 0.001}],
    "batch_sizes": [128, "full"],
    "epochs": 5,
}


def test_the_issue_presets_are_valid_exactly_as_written():
    quick = TrainPreset.model_validate_json(json.dumps(QUICK))
    assert quick.batch_sizes == [1, 32, "full"]
    assert [o.name for o in quick.optimizer_grid()] == ["sgd"]
    rprop = TrainPreset.model_validate(RPROP)
    assert [o.name for o in rprop.optimizer_grid()] == ["rprop", "rmsprop"]
    assert rprop.device == "auto" and rprop.target_accuracy == 0.95


def test_an_empty_preset_takes_sensible_defaults():
    preset = TrainPreset.model_validate({})
    assert preset.dataset == "digits" and preset.model == "lenet5"
    assert preset.optimizer_grid()[0].resolved().lr == 0.05


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"batch_sizes": [0]}, "batch_sizes"),
        ({"batch_sizes": [-4]}, "batch_sizes"),
        ({"batch_sizes": ["half"]}, "batch_sizes"),
        ({"optimizer": {"name": "sgd", "lr": 0}}, "optimizer"),
        ({"optimizer": {"name": "sgd", "lr": -1}}, "optimizer"),
        ({"optimizer": {"name": "lbfgs"}}, "optimizer"),
        ({"dataset": "imagenet"}, "dataset"),
        ({"model": "resnet50"}, "model"),
        ({"epochs": "ten"}, "epochs"),
        ({"colour": "blue"}, "colour"),
        ({"schema_version": 2}, "schema_version"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(change, field):
    with pytest.raises(ValidationError) as info:
        TrainPreset.model_validate({**QUICK, **change})
    assert any(error["loc"][0] == field for error in info.value.errors())


def test_optimizer_and_optimizers_together_are_ambiguous():
    with pytest.raises(ValidationError, match="either 'optimizer' or 'optimizers'"):
        TrainPreset.model_validate({**QUICK, "optimizers": [{"name": "adam"}]})


def test_hyperparameters_an_optimizer_does_not_have_are_errors():
    with pytest.raises(ValidationError, match="sgd has no hyper-parameter 'betas'"):
        OptimizerConfig(name="sgd", betas=(0.9, 0.99))
    assert OptimizerConfig(name="adam", betas=(0.8, 0.9)).resolved().eps == 1e-8


def test_resolved_optimizer_fills_every_default():
    rprop = OptimizerConfig(name="rprop").resolved()
    assert rprop.lr == 0.001 and rprop.etas == (0.5, 1.2) and rprop.step_sizes == (1e-6, 50.0)
    assert OptimizerConfig(name="nesterov").resolved().momentum == 0.9


def test_lr_scaling_rules():
    from tui_lab.schema import LrScaling

    assert LrScaling(rule="linear", base_batch_size=32).scale(0.1, 128) == pytest.approx(0.4)
    assert LrScaling(rule="sqrt", base_batch_size=32).scale(0.1, 128) == pytest.approx(0.2)
    assert LrScaling().scale(0.1, 128) == 0.1


def integer_nodes(node: object, where: str = "") -> list[tuple[str, dict]]:
    """Every integer of a JSON Schema, with where it is."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == "integer":
            found.append((where, node))
        for key, value in node.items():
            found += integer_nodes(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += integer_nodes(value, f"{where}/{index}")
    return found


@pytest.mark.parametrize("adapter", [PRESET_ADAPTER, SESSION_ADAPTER], ids=["preset", "session"])
def test_every_whole_number_a_file_gives_is_bounded(adapter):
    """A number of any size is bounded where it is read: no integer field without a maximum."""
    nodes = integer_nodes(adapter.json_schema())
    assert nodes
    bounds = {"maximum", "exclusiveMaximum", "const", "enum"}
    unbounded = [where for where, node in nodes if not bounds & node.keys()]
    assert unbounded == []


def test_field_paths_name_the_users_fields_not_pydantics_union_members():
    data = {"optimizers": [{"name": "sgd", "lr": [0.1, -1]}], "lr_grid": {"factors": "x"}}
    with pytest.raises(ValidationError) as caught:
        TrainPreset.model_validate(data)
    error = from_validation_error(caught.value, "p.json", data)
    assert error.field == "optimizers[0].lr[1]"
    assert "lr_grid.factors: Input should be a valid list" in error.message
    assert "constrained" not in error.describe() and "Input should be a valid number" not in str(
        error
    )


def test_a_missing_field_is_named_though_the_file_lacks_it():
    data = {"executor": {"cpus_per_run": 2}}
    with pytest.raises(ValidationError) as caught:
        TrainPreset.model_validate({"executor": {"kind": "ray", "cpus_per_run": 0}})
    error = from_validation_error(
        caught.value, "p.json", {"executor": {"kind": "ray", **data["executor"]}}
    )
    assert error.field == "executor.cpus_per_run"


def test_messages_show_control_characters_as_escapes():
    error = BadInput("unknown field", source="a\x1b[2J.json", field="\x1b]0;x\x07")
    assert error.describe() == r"a\x1b[2J.json: \x1b]0;x\x07: unknown field"
    assert printable("line\nnext\u202e", keep_newlines=True) == "line\nnext\\u202e"


def test_a_time_without_a_zone_is_read_as_utc():
    session = SESSION_ADAPTER.validate_python(
        {**session_from_accuracies(8, [0.5], 1.0).model_dump(), "created": "2025-01-01T00:00:00"}
    )
    assert session.created == datetime(2025, 1, 1, tzinfo=timezone.utc)


def test_the_same_optimizer_twice_is_refused_even_when_one_spells_out_a_default():
    with pytest.raises(ValidationError, match="optimizer 'sgd' is listed twice"):
        TrainPreset.model_validate({"optimizers": [{"name": "sgd"}, {"name": "sgd", "lr": 0.05}]})
    preset = TrainPreset.model_validate(
        {"optimizers": [{"name": "sgd"}, {"name": "sgd", "lr": 0.1}]}
    )
    assert len(preset.optimizer_grid()) == 2


def test_a_message_lists_ten_problems_at_most():
    data = {"batch_sizes": [-1] * 30}
    with pytest.raises(ValidationError) as caught:
        TrainPreset.model_validate(data)
    message = from_validation_error(caught.value, "p.json", data).describe()
    assert len(message.splitlines()) == 11 and message.endswith("… and 50 more")
