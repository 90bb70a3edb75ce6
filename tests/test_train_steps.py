"""Graphed training steps: same training as eager steps, and an honest record of which ran."""

from __future__ import annotations

import pytest
import torch
from factories import run_config, small_sweep

from tui_lab.core.data import load_data
from tui_lab.errors import BadInput
from tui_lab.run.engine import train_run
from tui_lab.run.events import EpochEnded, RunEnded, RunStarted
from tui_lab.run.sweep import plan_runs, prepare_sweep
from tui_lab.run.train_steps import graph_plan


def epoch_losses(config, data):
    """Train and validation loss of every epoch, flat (pytest.approx takes no nested tuples),
    and the run's environment."""
    events = list(train_run(config, data))
    env = next(e.environment for e in events if isinstance(e, RunStarted))
    assert next(e for e in events if isinstance(e, RunEnded)).status == "completed"
    records = [e.record for e in events if isinstance(e, EpochEnded)]
    losses = [loss for r in records for loss in (r.train_loss, r.val_loss)]
    return losses, env


def test_static_buffer_steps_train_exactly_like_eager_ones(monkeypatch):
    """The graphed step's buffers (permutation, device-side position, partial last batch,
    noise-measuring steps in between) run eagerly on the cpu: the losses must be identical."""
    # 150 samples at batch 16: 9 full batches and a partial one of 6; noise 4 times an epoch.
    data = load_data("digits").subset(150, seed=0)
    config = run_config(16, optimizer="momentum", epochs=3).updated(
        model="mlp", noise_scale={"enabled": True, "per_epoch": 4, "time_share": 1.0}
    )
    eager, _ = epoch_losses(config.updated(cuda_graphs="off"), data)
    monkeypatch.setattr("tui_lab.run.train_steps.graph_plan", lambda c: ("cuda_graph", "test"))
    graphed, env = epoch_losses(config, data)
    assert env.training_step == "cuda_graph"
    assert graphed == eager


def test_auto_falls_back_to_eager_and_says_why():
    cpu = run_config(8)
    assert graph_plan(cpu) == ("eager", "CUDA graphs need a CUDA device, not cpu")
    cuda = cpu.updated(device="cuda:0")
    assert graph_plan(cuda)[0] == "cuda_graph"
    kind, why = graph_plan(cuda.updated(micro_batch_size=4, optimizer={"name": "adagrad"}))
    assert kind == "eager" and "adagrad" in why and "micro-batching" in why
    assert graph_plan(cuda.updated(cuda_graphs="off")) == ("eager", "cuda_graphs is off")


def test_the_session_environment_records_the_kind_of_step(tmp_path):
    prepared = prepare_sweep(small_sweep(batch_sizes=[32]), out_dir=tmp_path)
    started = next(e for e in train_run(prepared.runs[0], prepared.data))
    assert started.environment.training_step == "eager"
    assert "CUDA device" in started.environment.training_step_reason


def test_cuda_graphs_on_where_impossible_is_bad_input_naming_the_field():
    preset = small_sweep(cuda_graphs="on")
    with pytest.raises(BadInput) as caught:
        plan_runs(preset, 160, "cpu", source="p.json")
    assert caught.value.field == "cuda_graphs" and "CUDA device" in str(caught.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_graphed_cuda_steps_give_the_eager_losses(optimizer):
    data = load_data("digits").subset(150, seed=0)
    config = run_config(16, optimizer=optimizer, epochs=3).updated(device="cuda:0")
    eager, _ = epoch_losses(config.updated(cuda_graphs="off"), data)
    graphed, env = epoch_losses(config, data)
    assert env.training_step == "cuda_graph"
    assert graphed == pytest.approx(eager, rel=1e-4, abs=1e-5)
