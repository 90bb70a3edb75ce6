"""Final weights beside the session: safe format, atomic writes; flat views of the parameters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from tui_lab.core.weights import (
    flat_parameters,
    load_weights,
    preserved_weights,
    save_weights,
    set_flat_parameters,
    weights_path_for,
)
from tui_lab.errors import BadInput


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_weights_file_sits_beside_the_session() -> None:
    session = Path("sessions/2024-05-01_sgd_b8.json")
    assert weights_path_for(session) == Path("sessions/2024-05-01_sgd_b8.safetensors")


def test_round_trip_restores_an_identical_model(tmp_path: Path) -> None:
    model = small_model()
    model(torch.randn(8, 3))  # moves the batch-norm running statistics off their defaults
    path = weights_path_for(tmp_path / "run.json")
    save_weights(model, path)

    loaded = load_weights(path)
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    fresh.load_state_dict(loaded)
    expected = model.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    assert all(t.device.type == "cpu" for t in loaded.values())


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "run.safetensors"
    save_weights(small_model(), path)
    save_weights(nn.Linear(3, 4), path)  # overwrite: the reader sees whole files only
    assert os.listdir(tmp_path) == ["run.safetensors"]
    assert set(load_weights(path)) == {"weight", "bias"}


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "run.safetensors"
    save_weights(nn.Linear(3, 4), path)
    before = path.read_bytes()

    class Unsavable(nn.Module):
        def state_dict(self, *args: object, **kwargs: object) -> dict[str, object]:
            return {"weight": torch.zeros(2), "oops": "not a tensor"}

    with pytest.raises(Exception):  # noqa: B017 (whatever safetensors raises)
        save_weights(Unsavable(), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run.safetensors"]


def test_loading_is_safe_and_says_which_file_is_bad(tmp_path: Path) -> None:
    pickled = tmp_path / "evil.safetensors"
    torch.save({"weight": torch.zeros(2)}, pickled)  # a pickle, which safetensors never runs
    with pytest.raises(BadInput, match=r"evil\.safetensors: not a readable safetensors file"):
        load_weights(pickled)
    with pytest.raises(BadInput, match=r"missing\.safetensors"):
        load_weights(tmp_path / "missing.safetensors")


def test_flat_parameters_round_trip_in_place() -> None:
    model = small_model()
    storage = [p.data_ptr() for p in model.parameters()]
    flat = flat_parameters(model)
    set_flat_parameters(model, torch.arange(flat.numel(), dtype=torch.float32))
    assert flat_parameters(model).tolist() == list(range(flat.numel()))
    assert [p.data_ptr() for p in model.parameters()] == storage, "same tensors, new values"
    with pytest.raises(ValueError, match="parameters"):
        set_flat_parameters(model, torch.zeros(3))


def test_preserved_weights_undoes_changes_and_mode_even_on_error() -> None:
    model = small_model()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError), preserved_weights(model):
        assert not model.training, "evaluation runs in eval mode"
        set_flat_parameters(model, torch.zeros_like(flat_parameters(model)))
        raise RuntimeError("midway")
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in before)
    assert model.training
