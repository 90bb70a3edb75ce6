"""Seeds trained together as one stacked model give the numbers of training them one by one."""

from __future__ import annotations

import pytest
import torch
from factories import small_sweep

from tui_lab.core.weights import load_weights
from tui_lab.run.events import RunEnded, RunStarted, SessionSaved
from tui_lab.run.policy import plan_tasks
from tui_lab.run.stacked import stacking_blocker
from tui_lab.run.sweep import plan_runs, prepare_sweep, run_sweep


def filled(model) -> set[str]:
    """The fields a pydantic model has a value in."""
    return {k for k, v in model.model_dump().items() if v not in (None, [], {}, "")}


def sessions_of(preset, out):
    """Final sessions by (batch, lr, seed), and their weights."""
    events = list(run_sweep(prepare_sweep(preset, out_dir=out)))
    saved = [e.session for e in events if isinstance(e, SessionSaved) and e.final]
    return events, {
        (s.config.batch_size, round(s.config.lr, 6), s.config.seed): (
            s,
            load_weights(out / s.weights_file),
        )
        for s in saved
    }


@pytest.mark.parametrize(
    "changes",
    [
        # MLP, SGD with momentum, 2 seeds at two learning rates (per-replica lr scaling), noise
        # scale and trajectory measured per replica
        {
            "optimizer": {"name": "sgd", "lr": [0.05, 0.1], "momentum": 0.9},
            "seeds": [0, 1],
            "trajectory": {"grid_resolution": 5, "eval_samples": 32},
            "noise_scale": {"enabled": True},
        },
        # LeNet-5 (vmap over convolutions), Adam with warm-up, the last batch of an epoch short
        {
            "model": "lenet5",
            "optimizer": {"name": "adam", "lr": 0.002},
            "replicates": 2,
            "batch_sizes": [48],
            "lr_scaling": {"warmup_epochs": 1},
            "trajectory": {"enabled": False},
            "noise_scale": {"enabled": True},
        },
        # the stacked step from static buffers, as captured in a CUDA graph (here run eagerly:
        # the device-side position, K permutations, the partial last batch)
        {
            "model": "lenet5",
            "optimizer": {"name": "sgd", "lr": [0.05, 0.1], "momentum": 0.9},
            "replicates": 2,
            "batch_sizes": [48],
            "trajectory": {"enabled": False},
            "noise_scale": {"enabled": True},
            "static_buffers": True,
        },
        # the same on a GPU (grouped cuDNN convolutions against plain ones), eager and captured
        *(
            pytest.param(
                {
                    "model": "lenet5",
                    "optimizer": {"name": "sgd", "lr": [0.05, 0.1], "momentum": 0.9},
                    "replicates": 2,
                    "device": "cuda",
                    "cuda_graphs": graphs,
                    "trajectory": {"enabled": False},
                    "noise_scale": {"enabled": True},
                },
                marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
            )
            for graphs in ("auto", "on")
        ),
    ],
    ids=[
        "mlp-momentum-lr-grid",
        "lenet-adam-warmup",
        "lenet-static-buffers",
        "lenet-cuda-graphs-auto",
        "lenet-cuda-graphs-on",
    ],
)
def test_stacked_seeds_match_seeds_trained_one_by_one(tmp_path, monkeypatch, changes):
    changes = dict(changes)
    if changes.pop("static_buffers", False):
        monkeypatch.setattr("tui_lab.run.train_steps.graph_plan", lambda c: ("cuda_graph", "test"))
    # TF32 would round both sides differently; in full fp32 only summation order differs
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    preset = small_sweep(**changes).updated(batch_sizes=changes.get("batch_sizes", [32]))
    events, alone = sessions_of(preset.updated(stacking="separate"), tmp_path / "alone")
    assert {e.stacked for e in events if isinstance(e, RunStarted)} == {1}
    events, together = sessions_of(preset.updated(stacking="stacked"), tmp_path / "together")
    starts = [e for e in events if isinstance(e, RunStarted)]
    assert {e.stacked for e in starts} == {len(starts)} and len(starts) > 1
    assert alone.keys() == together.keys()
    for key, (session, weights) in together.items():
        reference, reference_weights = alone[key]
        assert session.stacked == len(starts) and session.status == "completed"
        for mine, theirs in zip(session.epochs, reference.epochs, strict=True):
            assert mine.val_loss == pytest.approx(theirs.val_loss, rel=1e-4, abs=1e-5)
            assert mine.train_loss == pytest.approx(theirs.train_loss, rel=1e-4, abs=1e-5)
            assert mine.val_accuracy == pytest.approx(theirs.val_accuracy, abs=1 / 300)
        for name, tensor in weights.items():
            torch.testing.assert_close(tensor, reference_weights[name], rtol=1e-4, atol=1e-5)
        b_mine = [p.b_simple for p in session.noise_scale]
        b_theirs = [p.b_simple for p in reference.noise_scale]
        assert b_mine == pytest.approx(b_theirs, rel=1e-3)
        assert (session.trajectory is None) == (reference.trajectory is None)
        # The one epoch loop: a stacked run fills every field a run alone fills.
        assert filled(session) == filled(reference)
        assert all(
            filled(a) == filled(b) for a, b in zip(session.epochs, reference.epochs, strict=True)
        )
        assert session.environment.training_step == "stacked"
    # different seeds really are different replicas
    firsts = {key[2]: w for key, (_, w) in together.items()}
    assert not torch.equal(*(next(iter(firsts[s].values())) for s in list(firsts)[:2]))


def test_a_diverging_replica_ends_alone_and_its_siblings_go_on(tmp_path):
    preset = small_sweep(
        optimizer={"name": "sgd", "lr": [0.05, 1e6]}, batch_sizes=[32], stacking="stacked"
    )
    events = list(run_sweep(prepare_sweep(preset, out_dir=tmp_path)))
    ended = {e.run_index: e.status for e in events if isinstance(e, RunEnded)}
    assert ended == {0: "completed", 1: "diverged"}


def test_tasks_stack_what_may_and_where_it_pays():
    lenet = small_sweep(model="lenet5", batch_sizes=[2, 128], replicates=3)
    runs = plan_runs(lenet, 160, "cpu")
    assert plan_tasks(runs) == [[0, 1, 2], [3], [4], [5]]  # batch 2 stacked, 128 alone
    mlp = plan_runs(small_sweep(batch_sizes=[1], replicates=3), 160, "cpu")
    assert plan_tasks(mlp) == [[0], [1], [2]]  # memory-bound: never pays on a CPU
    # On a GPU a run alone replays a CUDA graph and an eager stack loses (benchmarks/seeds.py)
    gpu = plan_runs(small_sweep(batch_sizes=[2, 1024], replicates=8), 2048, "cuda")
    assert plan_tasks(gpu, slots=1) == [*([i] for i in range(8)), list(range(8, 16))]  # 6.4 < 8
    assert plan_tasks(gpu, slots=8) == [[i] for i in range(16)]  # runs sharing the GPU win
    forced = plan_runs(
        small_sweep(batch_sizes=[8, 128], replicates=2, stacking="stacked"), 160, "cpu"
    )
    assert plan_tasks(forced) == [[0, 1], [2, 3]]
    never = plan_runs(small_sweep(batch_sizes=[8], replicates=2, stacking="separate"), 160, "cpu")
    assert plan_tasks(never) == [[0], [1]]
    cnn = plan_runs(small_sweep(model="cnn", batch_sizes=[8], replicates=2), 160, "cpu")
    assert plan_tasks(cnn) == [[0], [1]] and "batch norm" in stacking_blocker(cnn)
    rprop = small_sweep(optimizer={"name": "rprop", "lr": [0.001, 0.01]}, batch_sizes=[8])
    assert "one lr per stack" in stacking_blocker(plan_runs(rprop, 160, "cpu"))


def test_auto_weighs_a_stack_in_one_slot_against_separate_runs_over_the_slots():
    """On 2 cores, 8 LeNet-5 seeds of one configuration at batch 1 stacked cost about what two
    separate runs at a time do (benchmarks/seeds.py): a tie keeps them separate. With more
    configurations than slots, every slot is busy anyway and each stack saves half its work."""
    one = plan_runs(small_sweep(model="lenet5", batch_sizes=[1], replicates=8), 160, "cpu")
    assert plan_tasks(one, slots=1) == [list(range(8))]  # in this process: stack
    assert plan_tasks(one, slots=2) == [[i] for i in range(8)]  # a tie: separate
    two = plan_runs(small_sweep(model="lenet5", batch_sizes=[1, 2], replicates=8), 160, "cpu")
    assert plan_tasks(two, slots=2) == [list(range(8)), list(range(8, 16))]
    assert plan_tasks(two, slots=16) == [[i] for i in range(16)]  # a core for every run


@pytest.mark.parametrize("stacking", ["separate", "stacked"])
def test_runs_asked_to_stop_at_the_target_end_there(tmp_path, stacking):
    preset = small_sweep(
        batch_sizes=[32],
        optimizer={"name": "sgd", "lr": [0.05, 1e-5], "momentum": 0.9},
        epochs=4,
        target_accuracy=0.5,
        stop_at_target=True,
        stacking=stacking,
        trajectory={"grid_resolution": 5, "eval_samples": 32},
    )
    _, sessions = sessions_of(preset, tmp_path)
    fast, crawling = sessions[(32, 0.05, 0)][0], sessions[(32, 1e-5, 0)][0]
    assert fast.status == "completed" and "stopped at the target" in fast.message
    assert len(fast.epochs) < 4 and fast.summary.epochs_to_target == len(fast.epochs)
    assert fast.trajectory is not None and fast.trajectory.steps[-1] == fast.epochs[-1].steps
    assert len(crawling.epochs) == 4 and crawling.summary.epochs_to_target is None
