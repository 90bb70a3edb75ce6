"""The real network's path: bounded recording, the PCA plane, the loss grid and its drawing."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tui_lab.analysis.trajectory import (
    TrajectoryRecorder,
    evaluate,
    grid_extent,
    loss_grid,
    project_trajectory,
    trajectory_sketch,
)
from tui_lab.core.weights import flat_parameters, set_flat_parameters
from tui_lab.report.trajectory import render_trajectory
from tui_lab.schema.trajectory import TrajectorySketch

SNAPSHOTS = Path(__file__).parent / "snapshots_text"


def tiny_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def blobs(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three separable classes in R^4."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 4, generator=generator) + 2 * F.one_hot(y, 4).float()
    return x, y


def embedded_path(
    plane_coords: torch.Tensor, p: int = 500
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Snapshots final + c_i·Q in a random orthonormal 2-D plane Q of R^p: (them, final, Q)."""
    generator = torch.Generator().manual_seed(1)
    basis, _ = torch.linalg.qr(torch.randn(p, 2, generator=generator, dtype=torch.float64))
    final = torch.randn(p, generator=generator)
    snapshots = final + (plane_coords.double() @ basis.T).float()
    return snapshots, final, basis


def spiral(k: int = 25) -> torch.Tensor:
    """A path spiralling into the origin, stretched along x (like a real run's path)."""
    t = torch.linspace(0, 1, k, dtype=torch.float64)
    radius = 1 - t
    return torch.stack([3 * radius * torch.cos(5 * t), radius * torch.sin(5 * t)], dim=1)


def pairwise_distances(points: torch.Tensor) -> torch.Tensor:
    return torch.cdist(points, points)


def test_recorder_keeps_a_bounded_evenly_spread_record_of_any_length_run() -> None:
    model = nn.Linear(1, 1)
    recorder = TrajectoryRecorder(max_snapshots=8)
    recorded_calls = 0
    for step in range(1000):
        if recorder.wants(step):
            set_flat_parameters(model, torch.full((2,), float(step)))
            recorder.record(model, step)
            recorded_calls += 1
        assert len(recorder.steps) < 8
    assert recorded_calls < 40, "the engine pays for a copy only at wanted steps"
    steps = recorder.steps
    gaps = {b - a for a, b in itertools.pairwise(steps)}
    assert steps[0] == 0 and len(gaps) == 1, "from the start, evenly spaced"
    assert steps[-1] >= 1000 - 2 * gaps.pop(), "up to the latest part of the run"
    assert recorder.snapshots()[:, 0].tolist() == [float(s) for s in steps]
    assert recorder.snapshots().dtype == torch.float32


def test_projection_recovers_a_known_planar_trajectory() -> None:
    path = spiral()
    snapshots, final, basis = embedded_path(path)
    projection = project_trajectory(snapshots, final)

    assert sum(projection.explained_variance) == pytest.approx(1.0, abs=1e-6)
    assert projection.explained_variance[0] > projection.explained_variance[1] > 0.05
    # Same shape up to a rotation or reflection within the plane: all distances agree.
    scale = path.abs().max().item()
    found = projection.coords
    assert torch.allclose(pairwise_distances(found), pairwise_distances(path), atol=1e-4 * scale)
    assert torch.allclose(found[-1], torch.zeros(2, dtype=torch.float64), atol=1e-5)
    assert (found[0] <= 0).all(), "oriented so the path runs from the negative side to 0"
    directions = projection.directions.double()
    assert torch.allclose(directions @ directions.T, torch.eye(2, dtype=torch.float64), atol=1e-5)
    in_plane = directions @ basis @ basis.T
    assert torch.allclose(in_plane, directions, atol=1e-5), "the directions span the plane"
    # The coordinates are the offsets' components along the directions.
    offsets = (snapshots - final).double()
    assert torch.allclose(offsets @ directions.T, found, atol=1e-4 * scale)


def test_straight_path_gets_an_orthogonal_second_direction_with_no_variance() -> None:
    t = torch.linspace(-2, 0, 10, dtype=torch.float64)
    snapshots, final, _ = embedded_path(torch.stack([t, 0.5 * t], dim=1))
    projection = project_trajectory(snapshots, final)
    assert projection.explained_variance == pytest.approx((1.0, 0.0), abs=1e-6)
    d1, d2 = projection.directions.double()
    assert d2.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert abs((d1 @ d2).item()) < 1e-5
    assert torch.allclose(projection.coords[:, 1], torch.zeros(10, dtype=torch.float64), atol=1e-4)


def test_diverged_weights_have_no_projection() -> None:
    snapshots = torch.randn(5, 20)
    snapshots[2, 3] = math.nan
    with pytest.raises(ValueError, match="not finite"):
        project_trajectory(snapshots, torch.zeros(20))


def test_grid_extent_covers_path_and_origin_with_margin() -> None:
    coords = torch.tensor([[-4.0, -0.01], [-2.0, 0.02], [0.0, 0.0]])
    (x_lo, x_hi), (y_lo, y_hi) = grid_extent(coords, margin=0.2)
    assert x_lo < -4 and x_hi > 0
    assert y_hi - y_lo >= 0.1 * 4, "a thin path still gets a visible band of the surface"


def test_loss_grid_evaluates_the_plane_and_restores_the_model() -> None:
    model = tiny_mlp()
    model.train()
    x, y = blobs()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    final = flat_parameters(model).clone()
    directions = torch.linalg.qr(torch.randn(final.numel(), 2))[0].T.contiguous()

    grid = loss_grid(model, final, directions, x, y, extent=((-1, 1), (-2, 2)), resolution=5)

    assert grid.loss.shape == (5, 5)
    assert grid.xs.tolist() == [-1, -0.5, 0, 0.5, 1] and grid.ys.tolist() == [-2, -1, 0, 1, 2]
    own_loss = F.cross_entropy(model(x), y).item()
    assert grid.loss[2, 2].item() == pytest.approx(own_loss, rel=1e-5), "centre = final weights"
    set_flat_parameters(model, final + 0.5 * directions[0] - 1 * directions[1])
    assert grid.loss[1, 3].item() == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-5)
    model.load_state_dict(before)

    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert model.training, "train mode is restored too"


def test_loss_grid_restores_the_model_when_evaluation_fails_midway() -> None:
    model = tiny_mlp()
    x, y = blobs()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = 0

    def failing_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("out of memory")
        return F.cross_entropy(outputs, targets)

    final = flat_parameters(model)
    with pytest.raises(RuntimeError, match="out of memory"):
        loss_grid(
            model,
            final,
            torch.eye(2, final.numel()),
            x,
            y,
            extent=((-1, 1), (-1, 1)),
            resolution=3,
            loss_fn=failing_loss,
        )
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_evaluate_batches_give_the_whole_set_mean() -> None:
    model = tiny_mlp()
    x, y = blobs(n=250)
    loss, accuracy = evaluate(model, x, y, batch_size=64)
    with torch.no_grad():
        outputs = model(x)
    assert loss.item() == pytest.approx(F.cross_entropy(outputs, y).item(), rel=1e-5)
    assert accuracy.item() == pytest.approx((outputs.argmax(1) == y).float().mean().item())


def test_sketch_of_a_real_run_ends_at_the_final_weights() -> None:
    model = tiny_mlp()
    x, y = blobs()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = TrajectoryRecorder(max_snapshots=8)
    generator = torch.Generator().manual_seed(0)
    for step in range(40):
        if recorder.wants(step):
            recorder.record(model, step)
        batch = torch.randint(0, len(x), (8,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    weights = {k: v.clone() for k, v in model.state_dict().items()}

    sketch = trajectory_sketch(model, recorder, 40, x[:64], y[:64], resolution=5)

    assert sketch.steps[0] == 0 and sketch.steps[-1] == 40
    assert (sketch.path_x[-1], sketch.path_y[-1]) == (0, 0)
    assert sketch.explained_variance[0] >= sketch.explained_variance[1]
    assert sum(sketch.explained_variance) <= 1.0 + 1e-4
    assert len(sketch.grid_x) == len(sketch.grid_y) == 5 and len(sketch.grid_loss) == 5
    assert min(sketch.grid_x) < min(sketch.path_x) and max(sketch.grid_x) > 0
    assert sketch.eval_samples == 64
    assert all(torch.equal(model.state_dict()[k], weights[k]) for k in weights)
    assert TrajectorySketch.model_validate_json(sketch.model_dump_json()) == sketch


def test_sketch_is_small_and_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="grid_loss"):
        TrajectorySketch(
            steps=[0],
            path_x=[0.0],
            path_y=[0.0],
            explained_variance=(1.0, 0.0),
            grid_x=[0.0, 1.0],
            grid_y=[0.0, 1.0],
            grid_loss=[[1.0, 2.0]],
            eval_samples=1,
        )
    sketch = synthetic_sketch()
    assert sketch.grid_loss[0][0] == float(f"{sketch.grid_loss[0][0]:.5g}"), "5 digits kept"
    assert len(sketch.model_dump_json()) < 8000


def synthetic_sketch() -> TrajectorySketch:
    """A hand-made sketch: an elongated bowl with a spiral path, so the picture is stable."""
    path = spiral(20)
    xs = torch.linspace(-4, 1, 21)
    ys = torch.linspace(-1.5, 1.5, 21)
    loss = 0.05 + 0.1 * xs[None, :] ** 2 + 0.8 * ys[:, None] ** 2
    return TrajectorySketch(
        steps=list(range(0, 200, 10)),
        path_x=(-path[:, 0]).tolist(),
        path_y=path[:, 1].tolist(),
        explained_variance=(0.91234, 0.0712),
        grid_x=xs.tolist(),
        grid_y=ys.tolist(),
        grid_loss=loss.tolist(),
        eval_samples=512,
    )


def test_render_trajectory_matches_snapshot(assert_text_snapshot) -> None:
    """Golden text; regenerate with BSLAB_UPDATE_SNAPSHOTS=1 after a deliberate change."""
    text = render_trajectory(synthetic_sketch(), width=72, height=22, label="b=8", color=False)
    assert "\x1b[" not in text
    assert "91% + 7%" in text, "the title says how much of the path the plane explains"
    assert_text_snapshot("test_render_trajectory_matches_snapshot.txt", text)
